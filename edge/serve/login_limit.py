"""Failed logins, counted per user name and per client address: too many locks that key.

In memory: a restart forgets the counts, which costs a guesser one restart's worth of tries
(and a restart needs the machine). Locking a name also locks out its owner for a while; that is
the price of stopping a guesser who moves between addresses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

MAX_FAILURES = 5  # within WINDOW_S: the next try is refused for LOCK_S
WINDOW_S = 15 * 60
LOCK_S = 15 * 60
MAX_KEYS = 10_000  # names and addresses tracked at once; beyond it the stalest are forgotten


class LoginLimit:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S,
                 lock_s: float = LOCK_S, clock=time.monotonic):
        self.max_failures, self.window_s, self.lock_s = max_failures, window_s, lock_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def retry_after(self, *keys: str) -> int:
        """Seconds until every key may try again; 0 when none is locked."""
        now = self._clock()
        with self._lock:
            until = max((self._locked_until.get(key, 0.0) for key in keys), default=0.0)
        return math.ceil(until - now) if until > now else 0

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] < now - self.window_s:
                    times.popleft()
                if len(times) >= self.max_failures:
                    self._locked_until[key] = now + self.lock_s
                    times.clear()
            self._forget_stalest(now)

    def succeeded(self, key: str) -> None:
        """A right password clears its name's count (not its address's: one account of his
        own must not reset a guesser's count there)."""
        with self._lock:
            self._failures.pop(key, None)

    def _forget_stalest(self, now: float) -> None:
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]
        if len(self._failures) > MAX_KEYS:
            by_age = sorted(self._failures, key=lambda k: self._failures[k][-1]
                            if self._failures[k] else 0.0)
            for key in by_age[:len(self._failures) - MAX_KEYS]:
                del self._failures[key]


def user_key(name: str) -> str:
    return "user:" + name.strip().lower()[:64]


def address_key(address: str) -> str:
    return "address:" + address
