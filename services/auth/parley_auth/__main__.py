import parley_common.green  # noqa: F401  (eventlet must patch the stdlib first)

import sys

from parley_common.nameko_support import main

from parley_auth.service import AuthService

if __name__ == "__main__":
    sys.exit(main(AuthService, "parley_auth:migrations"))
