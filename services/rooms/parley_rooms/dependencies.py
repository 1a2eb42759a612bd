"""How the rooms service reaches its store: a nameko DependencyProvider (as nameko-examples
does) that owns the engines and hands each worker a Store on them."""
from __future__ import annotations

from parley_common import config, db
from parley_common.nameko_support import Database, call_with_timeout
from parley_common.outbox import Outbox

from .models import outbox
from .store import Store

RPC_TIMEOUT_SECONDS = config.env_float("RPC_TIMEOUT_SECONDS", 5.0)


class RoomsStore(Database):
    """Each worker's :class:`Store`, on a session of its own (closed, so rolled back if still
    open, when the worker ends). Two pools on PostgreSQL:

    - the session pool (Database's) for everything but posting, with pre-ping;
    - the autocommit pool of posting, the hot path: autocommit makes a post batch's single
      statement its own transaction (one round trip instead of statement + COMMIT), set once
      per connection rather than toggled on every checkout; no pre-ping (a ping is a round
      trip per call, as much as the post itself). After a database restart one post fails
      with `unavailable`, that pool is dropped, and retries succeed. The session pool keeps
      pre-ping: no post would ever notice its connections died, and those calls are not hot
      enough for the extra round trip to matter.

    Profiles the users replica lacks come from ``<users_from>.get_users``, the service's
    RpcProxy of that name, bounded by RPC_TIMEOUT_SECONDS."""

    def __init__(self, service: str, *, users_from: str):
        super().__init__(service)
        self.users_from = users_from
        self.autocommit_engine = None

    def setup(self):
        super().setup()
        url = config.database_url(self.service)
        if not db.is_sqlite(url):
            self.autocommit_engine = db.make_engine(url, pool_size=self.pool_size, pre_ping=False,
                                                    isolation_level="AUTOCOMMIT")

    def stop(self):
        if self.autocommit_engine is not None:
            # Rows of confirmed events still waiting for their delete: gone now, or another
            # replica's relay would send those events again (if the database is away: it will).
            try:
                Outbox(outbox, None, fast_delete=self.autocommit_engine).flush_released()
            except Exception:
                pass
            self.autocommit_engine.dispose()
        super().stop()

    def get_dependency(self, worker_ctx) -> Store:
        session = super().get_dependency(worker_ctx)

        def fetch_users(user_ids: list[str]) -> dict[str, dict]:
            proxy = getattr(worker_ctx.service, self.users_from)
            found = call_with_timeout(proxy.get_users, user_ids, seconds=RPC_TIMEOUT_SECONDS,
                                      what=self.users_from)
            return found if isinstance(found, dict) else {}

        return Store(session, fetch_users, autocommit=self.autocommit_engine)
