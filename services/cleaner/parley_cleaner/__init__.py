"""Parley cleaner: hygiene of the Redis cache (dead gateway instances, lapsed typing markers,
stale presence room sets), publishing ``offline`` presence events on the way."""
