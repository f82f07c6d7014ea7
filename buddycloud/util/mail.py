"""Sending mail through an SMTP server (`[mail]`): password reset mails.

smtplib blocks, so each mail is sent in a worker thread, over a connection of its own,
with a timeout. STARTTLS is required when configured; the login, when configured, follows
it. Nothing of the mail's body (which holds a reset token) is ever logged.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    starttls: bool = True
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = TIMEOUT_SECONDS

    async def __call__(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user is not None and self.password is not None:
                smtp.login(self.user, self.password)
            smtp.send_message(message)
