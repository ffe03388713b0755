"""Login throttling: after repeated failures for one email from one address, or many from one address,
further attempts are refused (429 with Retry-After) until the window has passed.

In memory: the API runs in one process (`grader serve`); workers on other machines take no logins.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from grader.service.errors import TooSoon


class LoginThrottle:
    def __init__(self, *, per_account: int = 5, per_address: int = 50, window_seconds: float = 900) -> None:
        self.per_account, self.per_address, self.window = per_account, per_address, window_seconds
        self._failures: dict[tuple[str, ...], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, email_key: str, address: str) -> None:
        """TooSoon if this email from this address, or this address, failed too often lately."""
        now = time.monotonic()
        with self._lock:
            for key, most in (((address, email_key), self.per_account), ((address,), self.per_address)):
                failures = self._recent(key, now)
                if len(failures) >= most:
                    wait = math.ceil(failures[0] + self.window - now)
                    raise TooSoon(f"too many failed sign-ins: try again in {wait} s", retry_after=wait)

    def failed(self, email_key: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in ((address, email_key), (address,)):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email_key: str, address: str) -> None:
        with self._lock:
            self._failures.pop((address, email_key), None)

    def _recent(self, key: tuple[str, ...], now: float) -> deque[float]:
        """The key's failures within the window; a key with none left is forgotten (memory stays small)."""
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures
