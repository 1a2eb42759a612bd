"""Parley auth: users, password hashes, sessions and access-token signing (nameko RPC)."""
