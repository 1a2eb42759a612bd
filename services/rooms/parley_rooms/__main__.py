import parley_common.green  # noqa: F401  (eventlet patching must come first)

import sys

from parley_common.nameko_support import main

from .service import RoomsService

if __name__ == "__main__":
    sys.exit(main(RoomsService, "parley_rooms:migrations"))
