# Every test in the repo gets the isolation fixtures (own vhost, databases, Redis prefix).
pytest_plugins = ["parley_common.testing"]
