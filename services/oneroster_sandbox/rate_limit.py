"""The slow-server profile's request limit: at most N OneRoster requests in any one-second window."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """A sliding log of admitted requests; ``clock`` is injectable so tests control time."""

    def __init__(
        self, limit: int, *, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("the limit must be at least 1 request per window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._admitted: deque[float] = deque()

    def admit(self) -> int | None:
        """None when the request may go ahead (it is counted); else the ``Retry-After`` seconds.

        The wait is rounded up to whole seconds, the form every client parses, and is at least 1.
        """
        now = self._clock()
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            return max(1, math.ceil(self._admitted[0] + self.window - now))
        self._admitted.append(now)
        return None
