"""Code shared by every Parley process: configuration, bus topology, errors, logging, RPC."""
