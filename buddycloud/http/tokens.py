"""Bearer tokens: the ones this server issues, and the ones an app signs (`secret` method).

Both are JWTs signed with HS256 (RFC 7519, RFC 7518 3.2), told apart by their issuer: the
server's own carry `iss` = `ISSUER`, and are checked with the server's `token_key`; any
other is an app's, checked with `[auth] secret` when the `secret` method is enabled.

A server token's claims (docs/auth.md):
- `sub`: the user's bare JID; `iat`, `exp`: issued and good until (seconds since the epoch);
- `sat`: when the user signed in with a password or an app's token: a token is refreshed
  only until `sat` + the session lifetime;
- `gen`: the user's sign-in generation when it was issued; raising it revokes the token.

An app's token needs `sub` (a bare JID of this server's domain), `exp` (in the future) and
`iat`; `alg` must be HS256, so `none` and public-key algorithms are refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import jwt

from buddycloud.domain.errors import InvalidJid, NotAuthenticated
from buddycloud.domain.jid import Jid

ISSUER = "buddycloud"
ALGORITHM = "HS256"
# Clocks of the app and the server may differ a little.
LEEWAY_SECONDS = 30
MAX_TOKEN = 4096


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a good token says.

    Attributes:
        jid: the user.
        session_start: when the user signed in (`sat`, or an app token's `iat`).
        generation: the sign-in generation it was issued in; None for an app's token.
    """

    jid: Jid
    session_start: int
    generation: int | None


def issue(key: str, claims: TokenClaims, *, now: int, expires: int) -> str:
    """A server token for `claims`, good from `now` until `expires`."""
    payload = {
        "iss": ISSUER,
        "sub": str(claims.jid),
        "iat": now,
        "exp": expires,
        "sat": claims.session_start,
        "gen": claims.generation,
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def issuer_of(token: str) -> str | None:
    """The token's `iss` claim, read without checking anything.

    Raises:
        NotAuthenticated: the token is not a JWT at all.
    """
    if len(token) > MAX_TOKEN:
        raise NotAuthenticated("the token is too long")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise NotAuthenticated("the token is not a JWT") from None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


def verify_server_token(token: str, key: str, domain: str) -> TokenClaims:
    """The claims of a token this server issued.

    Raises:
        NotAuthenticated: the token is forged, expired or malformed.
    """
    claims = _decode(token, key, ["iss", "sub", "iat", "exp", "sat", "gen"], issuer=ISSUER)
    session_start, generation = claims["sat"], claims["gen"]
    if not _integer(session_start) or not _integer(generation):
        raise NotAuthenticated("the token's claims are malformed")
    return TokenClaims(_user(claims["sub"], domain), session_start, generation)


def verify_app_token(token: str, secret: str, domain: str) -> TokenClaims:
    """The claims of a token an app signed with the shared secret (`secret` method).

    Raises:
        NotAuthenticated: the signature, algorithm, expiry or subject is not acceptable.
    """
    claims = _decode(token, secret, ["sub", "iat", "exp"], issuer=None)
    issued = claims["iat"]
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise NotAuthenticated("the token's iat is not a time")
    return TokenClaims(_user(claims["sub"], domain), int(issued), None)


def _decode(token: str, key: str, required: list[str], *, issuer: str | None) -> dict[str, Any]:
    if len(token) > MAX_TOKEN:
        raise NotAuthenticated("the token is too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise NotAuthenticated("the token is not a JWT") from None
    if header.get("alg") != ALGORITHM:
        raise NotAuthenticated(f"tokens are signed with {ALGORITHM}")
    try:
        with warnings.catch_warnings():
            # A short key is refused when configured; PyJWT's warning adds nothing.
            warnings.simplefilter("ignore")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": required, "verify_aud": False},
            )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("the token has expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise NotAuthenticated(f"the token has no {exc.claim} claim") from None
    except jwt.InvalidSignatureError:
        raise NotAuthenticated("the token's signature is wrong") from None
    except jwt.exceptions.InvalidSubjectError:
        raise NotAuthenticated("the token's sub is not a JID") from None
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(f"the token is not acceptable: {exc}"[:200]) from None
    return claims


def _user(subject: object, domain: str) -> Jid:
    if not isinstance(subject, str):
        raise NotAuthenticated("the token's sub is not a JID")
    try:
        jid = Jid.parse(subject)
    except InvalidJid:
        raise NotAuthenticated("the token's sub is not a JID") from None
    if not jid.local or jid.resource or jid.domain != domain:
        raise NotAuthenticated(f"the token's sub must be a user of {domain}")
    return jid


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
