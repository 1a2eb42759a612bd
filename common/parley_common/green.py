"""Import first in a nameko process: eventlet must patch the stdlib before anything opens a
socket, and psycopg2 must cooperate with eventlet or one query would stall every worker."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

try:
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
except ImportError:  # SQLite-only installs have no psycopg2
    pass
