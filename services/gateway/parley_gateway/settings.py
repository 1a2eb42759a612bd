"""Gateway configuration from the environment (12-factor); defaults suit a developer machine.
Each setting names its variable and its default once, beside the field (``from_env``)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from parley_common import config
from parley_common.limits import MAX_POSTS_PER_CALL

STATIC_DIR = Path(__file__).resolve().parent / "static"


def parse_networks(text: str) -> tuple:
    """``"10.0.0.0/8, 172.16.0.0/12"`` -> networks; a bad entry stops the process at start."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.replace(";", ",").split(",") if part.strip())


def env_setting(variable: str, default: Any) -> Any:
    """A field read from environment variable ``variable`` (as the default's type), ``default``
    when it is unset or empty."""
    return field(default=default, metadata={"env": variable})


def _from_env(variable: str, default: Any) -> Any:
    if isinstance(default, bool):
        return config.env_bool(variable, default)
    if isinstance(default, int):
        return config.env_int(variable, default)
    if isinstance(default, float):
        return config.env_float(variable, default)
    if isinstance(default, Path):
        return Path(config.env(variable, str(default)))
    return config.env(variable, default)


@dataclass
class Settings:
    # Where the URLs' passwords come from (AMQP_PASSWORD, REDIS_PASSWORD) is config's business.
    instance_id: str = field(default_factory=config.instance_id)
    amqp_uri: str = config.DEFAULT_AMQP_URI
    redis_url: str = config.DEFAULT_REDIS_URL
    redis_prefix: str = config.DEFAULT_REDIS_PREFIX
    host: str = env_setting("HOST", "0.0.0.0")
    port: int = env_setting("PORT", 8080)
    rpc_timeout: float = env_setting("RPC_TIMEOUT_SECONDS", 5.0)
    # Message posts are batched into rooms.post_messages (posting.py): at most this many
    # posts per call (rooms takes no more), at most this many calls awaiting an answer at once.
    post_batch_max: int = env_setting("POST_BATCH_MAX", MAX_POSTS_PER_CALL)
    post_batches_in_flight: int = env_setting("POST_BATCHES_IN_FLIGHT", 4)
    max_body_bytes: int = env_setting("MAX_BODY_BYTES", 65536)
    # WebSocket side (used by ws.py / hub.py / presence.py)
    ws_max_frame: int = env_setting("WS_MAX_FRAME_BYTES", 65536)
    ws_auth_timeout: float = env_setting("WS_AUTH_TIMEOUT_SECONDS", 5.0)
    ws_send_queue: int = env_setting("WS_SEND_QUEUE", 256)
    # 0 = kernel default; a cap makes stalled clients show up sooner
    ws_socket_sndbuf: int = env_setting("WS_SOCKET_SNDBUF", 0)
    ws_rate: int = env_setting("WS_RATE_PER_10S", 30)  # messages per 10 s per user
    heartbeat_seconds: float = env_setting("HEARTBEAT_SECONDS", 5.0)
    drain_seconds: float = env_setting("DRAIN_SECONDS", 5.0)
    # Login throttling: failed logins counted per account and per client address.
    login_failures_per_account: int = env_setting("LOGIN_FAILURES_PER_ACCOUNT", 5)
    login_failures_per_address: int = env_setting("LOGIN_FAILURES_PER_ADDRESS", 20)
    login_window_seconds: int = env_setting("LOGIN_WINDOW_SECONDS", 900)
    # Registrations per client address per window; 0 disables (benchmarks, tests).
    registrations_per_address: int = env_setting("REGISTRATIONS_PER_ADDRESS", 20)
    registration_window_seconds: int = env_setting("REGISTRATION_WINDOW_SECONDS", 3600)
    # Proxies whose X-Forwarded-For we believe (CIDRs in TRUSTED_PROXIES). TRUST_PROXY_HEADERS=1,
    # the older switch, means "trust the direct peer, whatever it is" (kept for existing
    # deployments).
    trusted_proxies: tuple = ()
    trust_proxy_headers: bool = env_setting("TRUST_PROXY_HEADERS", False)
    # WebSocket budgets (budget.py), every one in-process; 0 disables each.
    # Every client frame counts, of any type.
    ws_frames_per_second: float = env_setting("WS_FRAMES_PER_SECOND", 20.0)
    ws_frame_burst: int = env_setting("WS_FRAME_BURST", 60)
    # Rooms one socket may be subscribed to; sockets one user may hold on one gateway.
    ws_max_subscriptions: int = env_setting("WS_MAX_SUBSCRIPTIONS", 1000)
    ws_max_sockets_per_user: int = env_setting("WS_MAX_SOCKETS_PER_USER", 20)
    ws_revocation_check_seconds: float = env_setting("WS_REVOCATION_CHECK_SECONDS", 30.0)
    # Posts waiting for a batch to rooms; beyond this a send/POST gets 503 at once.
    post_queue_max: int = env_setting("POST_QUEUE_MAX", 5000)
    # General REST write limit per user (POST/PATCH/PUT/DELETE); 0 disables it.
    write_rate_per_minute: int = env_setting("WRITE_RATE_PER_MINUTE", 600)
    # Re-fetch auth's public keys on an unknown kid at most this often.
    key_refresh_interval: float = env_setting("KEY_REFRESH_INTERVAL_SECONDS", 3.0)
    static_dir: Path = env_setting("STATIC_DIR", STATIC_DIR)

    @classmethod
    def from_env(cls) -> "Settings":
        values = {setting.name: _from_env(setting.metadata["env"], setting.default)
                  for setting in fields(cls) if "env" in setting.metadata}
        values["post_batch_max"] = min(MAX_POSTS_PER_CALL, max(1, values["post_batch_max"]))
        values["post_batches_in_flight"] = max(1, values["post_batches_in_flight"])
        return cls(instance_id=config.instance_id(), amqp_uri=config.amqp_uri(),
                   redis_url=config.redis_url(), redis_prefix=config.redis_prefix(),
                   trusted_proxies=parse_networks(config.env("TRUSTED_PROXIES", "") or ""),
                   **values)
