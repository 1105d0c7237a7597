"""Failed authentications per client address, so a client guessing keys is slowed down.

Kept in memory by each API process (see docs/decisions.md, Keys): with several replicas a
client gets `limit` failures per window from each.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

FAILURE_LIMIT = 20
WINDOW_SECONDS = 60.0
# Above this many addresses, those whose failures all left the window are forgotten.
TRACKED_ADDRESSES = 10_000


class FailedAuthentications:
    """After `limit` failures within `window_seconds` from one address, that address is
    refused until the oldest of them leaves the window."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        # address -> the times of its last `limit` failures, oldest first.
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None if it is not refused."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return None
        left = failures[0] + self.window_seconds - self.clock()
        return math.ceil(left) if left > 0 else None

    def record(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        now = self.clock()
        failures = self._failures.get(address)
        if failures is None:
            if len(self._failures) >= TRACKED_ADDRESSES:
                self._forget_before(now - self.window_seconds)
            failures = self._failures[address] = deque(maxlen=self.limit)
        failures.append(now)

    def _forget_before(self, moment: float) -> None:
        for address in [a for a, failures in self._failures.items() if failures[-1] <= moment]:
            del self._failures[address]
