"""Parley logger: archives every structlog record of the suite (queue ``logs.archive``)
and raises an alert line for each error record (queue ``logs.errors``)."""
