"""Fixtures of the cluster tests: simulator processes as named clusters, real worker pools."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clusters_support import Clusters

from podfleet.local.redis_server import RedisServer

#: The clusters the placement tests share: ``a`` takes at most 4 pods not yet Running (no
#: watcher runs there, so its reservations stay), ``a`` and ``b`` have GPUs.
PLACEMENT_CLUSTERS = {
    "a": {"labels": {"gpu": "true"}, "max_pending_pods": 4},
    "b": {"labels": {"gpu": "true"}},
    "c": {"labels": {"gpu": "false"}},
}


@pytest.fixture(scope="module")
def placement(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Clusters]:
    """Three clusters and one launcher pool (no watcher), shared by a module's tests."""
    world = Clusters(redis_server.url, tmp_path_factory.mktemp("clusters"), PLACEMENT_CLUSTERS,
                     PODFLEET_REDIS_PREFIX=f"pf-{uuid.uuid4().hex[:8]}")
    try:
        world.local.workers.start(1, 4, watcher=False)
        yield world
    finally:
        world.close()
