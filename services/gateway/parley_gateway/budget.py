"""In-process budgets of the WebSocket side: decided in this gateway's memory, with no Redis
round trip per frame (a socket lives on one instance, so nothing needs to agree on them).

- Every client frame, of any type (and binary or unparseable ones), takes a token from its
  connection's bucket: WS_FRAMES_PER_SECOND sustained, WS_FRAME_BURST at once. A frame
  without a token is answered ``error {code:"rate_limited"}``; after RATE_WARNINGS such
  warnings in a row the socket is closed with 4429.
- ``send`` frames also take a token from their USER's bucket (all of the user's sockets on
  this instance): WS_RATE_PER_10S per 10 seconds.
- A user holds at most WS_MAX_SOCKETS_PER_USER sockets on one instance, a socket at most
  WS_MAX_SUBSCRIPTIONS subscriptions.
Each limit is off when its variable is 0.
"""
from __future__ import annotations

import time

RATE_WARNINGS = 3  # rate_limited error frames in a row before the close with 4429
SEND_WINDOW = 10.0  # seconds over which WS_RATE_PER_10S send frames are allowed
_PRUNE_EVERY = 1024  # user buckets are pruned (full ones forgotten) this often


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full."""
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is there."""
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    @property
    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


class Verdict:
    OK, WARN, CLOSE = "ok", "warn", "close"


class FrameBudget:
    """One connection's frame budget."""

    def __init__(self, rate: float, burst: int):
        self.bucket = TokenBucket(rate, max(burst, 1)) if rate > 0 else None
        self.warnings = 0
        self.retry_after = 0.0

    def admit(self) -> str:
        if self.bucket is None:
            return Verdict.OK
        wait = self.bucket.take()
        if wait == 0.0:
            self.warnings = 0
            return Verdict.OK
        self.warnings += 1
        self.retry_after = wait
        return Verdict.CLOSE if self.warnings > RATE_WARNINGS else Verdict.WARN


class Budgets:
    """The budgets of one gateway process (``Realtime.budgets``)."""

    def __init__(self, settings):
        self.settings = settings
        self._senders: dict[str, TokenBucket] = {}
        self._calls = 0

    def for_connection(self) -> FrameBudget:
        s = self.settings
        return FrameBudget(s.ws_frames_per_second, s.ws_frame_burst)

    def send_wait(self, user_id: str) -> float:
        """0.0 when this user may send a message now, else the seconds to wait."""
        limit = self.settings.ws_rate
        if limit <= 0:
            return 0.0
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._senders = {uid: b for uid, b in self._senders.items() if not b.full}
        bucket = self._senders.get(user_id)
        if bucket is None:
            bucket = self._senders[user_id] = TokenBucket(limit / SEND_WINDOW, limit)
        return bucket.take()

    def socket_allowed(self, sockets_held: int) -> bool:
        cap = self.settings.ws_max_sockets_per_user
        return cap <= 0 or sockets_held < cap

    def subscription_allowed(self, subscribed: int) -> bool:
        cap = self.settings.ws_max_subscriptions
        return cap <= 0 or subscribed < cap
