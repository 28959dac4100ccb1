"""Stand-in for the ``podfleet worker`` parent: prepare the directory, serve, print the port.

Run as a subprocess by the exposition tests; settings come from PODFLEET_* variables. Serves
until its standard input closes.
"""

from __future__ import annotations

import sys

from podfleet.monitoring.exposition import prepare_multiprocess_dir, serve_worker_metrics
from podfleet.settings import Settings

settings = Settings.from_env()
prepare_multiprocess_dir(settings)
server = serve_worker_metrics(settings, port=0, host="127.0.0.1")
assert server is not None
print(server.port, flush=True)
sys.stdin.read()
server.close()
