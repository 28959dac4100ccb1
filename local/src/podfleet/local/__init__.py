"""A podfleet on one machine, as the demo, the load test, the benchmarks and the tests run it.

:mod:`podfleet.local.fleet` starts the whole fleet (cluster simulator, Redis, metadata DB,
shared settings, worker pools) and tears it down; the other modules are its pieces and what
its users share: a private ``redis-server`` and Sentinel group, a scratch PostgreSQL
database, free ports, stopping process groups, polling until something holds, percentiles.
"""
