"""Failed sign-ins, counted per account and per client address, to slow password guessing.

Each key (an account's JID, a client's address) keeps the times of its failures within the
window. Once a key has as many as its limit, every sign-in for it is refused until the
oldest of them leaves the window, even one with the right password: otherwise the limit
would only slow guessing, not stop it. Unknown accounts count like real ones, so the limit
tells nothing about which accounts exist. A success clears the account's failures.

The counts live in this process: behind a load balancer with several workers each one
counts on its own, so the effective limit is the configured one times the workers.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Keys kept at most, per kind: the oldest go first past it.
MAX_KEYS = 100_000


class TooManyFailures(Exception):
    """Sign-ins for this account or from this address are refused for `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


class FailureWindow:
    """Failures per key within the last `window` seconds, at most `limit`."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, key: str) -> None:
        """Raises TooManyFailures when `key` has reached its limit."""
        failures = self._recent(key)
        if failures is not None and len(failures) >= self.limit:
            wait = failures[len(failures) - self.limit] + self.window - self._clock()
            raise TooManyFailures(max(1, math.ceil(wait)))

    def fail(self, key: str) -> None:
        failures = self._recent(key)
        if failures is None:
            failures = self._failures[key] = deque()
        failures.append(self._clock())
        while len(failures) > self.limit:
            failures.popleft()
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
