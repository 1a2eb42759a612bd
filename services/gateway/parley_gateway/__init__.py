"""Parley gateway: the public REST API, the WebSocket hub and the web client (aiohttp)."""
