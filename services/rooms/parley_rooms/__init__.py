"""Parley rooms service: rooms, memberships, messages and read state (nameko RPC server)."""
