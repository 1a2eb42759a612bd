"""Gateway configuration from the environment (12-factor); defaults suit a developer machine."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from parley_common import config

STATIC_DIR = Path(__file__).resolve().parent / "static"


def parse_networks(text: str) -> tuple:
    """``"10.0.0.0/8, 172.16.0.0/12"`` -> networks; a bad entry stops the process at start."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.replace(";", ",").split(",") if part.strip())


@dataclass
class Settings:
    instance_id: str = field(default_factory=config.instance_id)
    host: str = "0.0.0.0"
    port: int = 8080
    amqp_uri: str = config.DEFAULT_AMQP_URI
    redis_url: str = config.DEFAULT_REDIS_URL
    redis_prefix: str = "parley:"
    rpc_timeout: float = 5.0
    # Message posts are batched into rooms.post_messages (posting.py): at most this many
    # posts per call, at most this many calls awaiting an answer at once.
    post_batch_max: int = 100
    post_batches_in_flight: int = 4
    max_body_bytes: int = 65536
    # WebSocket side (used by ws.py / hub.py / presence.py)
    ws_max_frame: int = 65536
    ws_auth_timeout: float = 5.0
    ws_send_queue: int = 256
    ws_socket_sndbuf: int = 0  # 0 = kernel default; a cap makes stalled clients show up sooner
    ws_rate: int = 30  # messages per 10 s per user
    heartbeat_seconds: float = 5.0
    drain_seconds: float = 5.0
    # Login throttling: failed logins counted per account and per client address.
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_seconds: int = 900
    # Registrations per client address per window; 0 disables (benchmarks, tests).
    registrations_per_address: int = 20
    registration_window_seconds: int = 3600
    # Proxies whose X-Forwarded-For we believe (CIDRs). TRUST_PROXY_HEADERS=1, the older
    # switch, means "trust the direct peer, whatever it is" (kept for existing deployments).
    trusted_proxies: tuple = ()
    trust_proxy_headers: bool = False
    # WebSocket budgets (budget.py), every one in-process; 0 disables each.
    ws_frames_per_second: float = 20.0   # every client frame counts, of any type
    ws_frame_burst: int = 60
    ws_max_subscriptions: int = 1000     # rooms one socket may be subscribed to
    ws_max_sockets_per_user: int = 20    # sockets one user may hold on one gateway
    ws_revocation_check_seconds: float = 30.0
    # Posts waiting for a batch to rooms; beyond this a send/POST gets 503 at once.
    post_queue_max: int = 5000
    # General REST write limit per user (POST/PATCH/PUT/DELETE); 0 disables it.
    write_rate_per_minute: int = 600
    # Re-fetch auth's public keys on an unknown kid at most this often.
    key_refresh_interval: float = 3.0
    static_dir: Path = STATIC_DIR

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            instance_id=config.instance_id(),
            host=config.env("HOST", "0.0.0.0"),
            port=config.env_int("PORT", 8080),
            amqp_uri=config.amqp_uri(),
            redis_url=config.redis_url(),
            redis_prefix=config.redis_prefix(),
            rpc_timeout=config.env_float("RPC_TIMEOUT_SECONDS", 5.0),
            post_batch_max=min(100, max(1, config.env_int("POST_BATCH_MAX", 100))),
            post_batches_in_flight=max(1, config.env_int("POST_BATCHES_IN_FLIGHT", 4)),
            max_body_bytes=config.env_int("MAX_BODY_BYTES", 65536),
            ws_max_frame=config.env_int("WS_MAX_FRAME_BYTES", 65536),
            ws_auth_timeout=config.env_float("WS_AUTH_TIMEOUT_SECONDS", 5.0),
            ws_send_queue=config.env_int("WS_SEND_QUEUE", 256),
            ws_socket_sndbuf=config.env_int("WS_SOCKET_SNDBUF", 0),
            ws_rate=config.env_int("WS_RATE_PER_10S", 30),
            heartbeat_seconds=config.env_float("HEARTBEAT_SECONDS", 5.0),
            drain_seconds=config.env_float("DRAIN_SECONDS", 5.0),
            login_failures_per_account=config.env_int("LOGIN_FAILURES_PER_ACCOUNT", 5),
            login_failures_per_address=config.env_int("LOGIN_FAILURES_PER_ADDRESS", 20),
            login_window_seconds=config.env_int("LOGIN_WINDOW_SECONDS", 900),
            registrations_per_address=config.env_int("REGISTRATIONS_PER_ADDRESS", 20),
            registration_window_seconds=config.env_int("REGISTRATION_WINDOW_SECONDS", 3600),
            trusted_proxies=parse_networks(config.env("TRUSTED_PROXIES", "") or ""),
            trust_proxy_headers=config.env_bool("TRUST_PROXY_HEADERS", False),
            ws_frames_per_second=config.env_float("WS_FRAMES_PER_SECOND", 20.0),
            ws_frame_burst=config.env_int("WS_FRAME_BURST", 60),
            ws_max_subscriptions=config.env_int("WS_MAX_SUBSCRIPTIONS", 1000),
            ws_max_sockets_per_user=config.env_int("WS_MAX_SOCKETS_PER_USER", 20),
            ws_revocation_check_seconds=config.env_float("WS_REVOCATION_CHECK_SECONDS", 30.0),
            post_queue_max=config.env_int("POST_QUEUE_MAX", 5000),
            write_rate_per_minute=config.env_int("WRITE_RATE_PER_MINUTE", 600),
            key_refresh_interval=config.env_float("KEY_REFRESH_INTERVAL_SECONDS", 3.0),
            static_dir=Path(config.env("STATIC_DIR", str(STATIC_DIR))),
        )
