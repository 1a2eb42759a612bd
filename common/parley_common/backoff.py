"""Capped exponential back-off, for every loop that waits for something to come up (broker,
database, another service), threads and asyncio alike."""
from __future__ import annotations

import random


class Backoff:
    """Capped exponential back-off with a little jitter (replicas don't retry in lockstep)."""

    def __init__(self, initial: float = 0.5, maximum: float = 15.0) -> None:
        self.initial, self.maximum = initial, maximum
        self._current = initial

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self.maximum)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._current = self.initial
