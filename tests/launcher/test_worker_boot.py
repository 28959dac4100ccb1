"""Worker boot: importing the worker modules declares nothing; ``boot`` declares exactly the
actors and queues of the settings, and the watcher only when it is enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

from podfleet.broker import LAUNCH_ACTOR_NAME, WATCH_ACTOR_NAME, WATCH_QUEUE
from podfleet.monitoring.dramatiq_metrics import DramatiqMetrics
from podfleet.settings import Settings
from podfleet.workers.boot import WorkerApp, boot
from podfleet.workers.cli import BOOT_CALLABLE, NO_WATCHER_VARIABLE
from podfleet.workers.launcher.actor import REDIS_OUTAGE_LIMIT_MS, LauncherShutdown
from podfleet.workers.middleware import DeadLetters, DeadWorkerRedelivery
from podfleet.workers.quarantine import QuarantiningRedisBroker
from podfleet.workers.steady_consumer import SteadyRedisBroker
from podfleet.workers.watcher.actor import WatcherSupervisor

SETTINGS = Settings.from_env({"PODFLEET_QUEUE_RATES": "etl=50,ml=10"})
LAUNCH_QUEUES = {"podfleet.launch", "podfleet.launch.etl", "podfleet.launch.ml"}

# Run in a fresh interpreter: import-time effects happen once per process, and this test
# process has long imported the worker modules.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil
import dramatiq
from dramatiq.brokers.stub import StubBroker

stub = StubBroker()
middleware = list(stub.middleware)
dramatiq.set_broker(stub)
import podfleet.workers
names = sorted(m.name for m in pkgutil.walk_packages(podfleet.workers.__path__,
                                                      "podfleet.workers."))
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "imported": names,
    "global_broker_replaced": dramatiq.get_broker() is not stub,
    "actors": sorted(stub.get_declared_actors()),
    "queues": sorted(stub.get_declared_queues()),
    "middleware_added": [type(m).__name__ for m in stub.middleware if m not in middleware],
}))
"""

# dramatiq's CLI loads the broker with ``import_broker("module:callable")``; so does this.
LOAD_AS_DRAMATIQ_DOES = """
import json, sys
from dramatiq.cli import import_broker
_, broker = import_broker(sys.argv[1])
print(json.dumps({"actors": sorted(broker.get_declared_actors()),
                  "queues": sorted(broker.get_declared_queues()),
                  "broker": type(broker).__name__}))
"""


def run_python(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PODFLEET_")}
    done = subprocess.run([sys.executable, "-c", script, *args], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def app() -> Iterator[WorkerApp]:
    booted = boot(SETTINGS)
    yield booted
    booted.broker.close()


@pytest.fixture
def app_without_watcher() -> Iterator[WorkerApp]:
    booted = boot(SETTINGS, watcher=False)
    yield booted
    booted.broker.close()


def test_importing_the_worker_modules_declares_nothing() -> None:
    # Given a global broker of dramatiq's, when every module of podfleet.workers is imported
    found = run_python(IMPORT_EVERYTHING)
    # Then none declared an actor or a queue on it, added middleware or replaced it
    assert "podfleet.workers.launcher.actor" in found["imported"]
    assert "podfleet.workers.watcher.actor" in found["imported"]
    assert found["actors"] == []
    assert found["queues"] == []
    assert found["middleware_added"] == []
    assert found["global_broker_replaced"] is False


def test_boot_declares_the_launch_and_watch_actors_on_every_configured_queue(
        app: WorkerApp) -> None:
    # Given two task queues besides the default, booted with the watcher
    # Then exactly the launch actor and the watcher's are declared, on exactly these queues
    assert app.broker.get_declared_actors() == {LAUNCH_ACTOR_NAME, WATCH_ACTOR_NAME}
    assert app.broker.get_declared_queues() == LAUNCH_QUEUES | {WATCH_QUEUE}
    assert set(app.launch_queues) == LAUNCH_QUEUES
    assert app.queues[-1] == WATCH_QUEUE
    assert app.launch_actor.queue_name == "podfleet.launch"
    assert app.launch_actor.options["time_limit"] == REDIS_OUTAGE_LIMIT_MS


def test_boot_adds_the_worker_middleware_once(app: WorkerApp) -> None:
    kinds = [type(m) for m in app.broker.middleware]
    assert isinstance(app.broker, QuarantiningRedisBroker)
    for kind in (DeadLetters, DeadWorkerRedelivery, DramatiqMetrics, LauncherShutdown,
                 WatcherSupervisor):
        assert kinds.count(kind) == 1, kind
    assert app.supervisor in app.broker.middleware


def test_boot_without_the_watcher_declares_no_watcher(app_without_watcher: WorkerApp) -> None:
    broker = app_without_watcher.broker
    assert broker.get_declared_actors() == {LAUNCH_ACTOR_NAME}
    assert broker.get_declared_queues() == LAUNCH_QUEUES
    assert not any(isinstance(m, WatcherSupervisor) for m in broker.middleware)
    assert app_without_watcher.watch_actor is None
    assert app_without_watcher.supervisor is None
    assert set(app_without_watcher.queues) == LAUNCH_QUEUES


def test_boot_leaves_the_global_broker_alone(app: WorkerApp) -> None:
    # Two boots in one process are two brokers, neither of them dramatiq's global one
    other = boot(SETTINGS)
    try:
        assert other.broker is not app.broker
        assert dramatiq.broker.global_broker not in (app.broker, other.broker)
    finally:
        other.broker.close()


@pytest.mark.parametrize(("no_watcher", "actors"), [
    ("", [LAUNCH_ACTOR_NAME, WATCH_ACTOR_NAME]),
    ("1", [LAUNCH_ACTOR_NAME]),
])
def test_dramatiq_boots_the_process_through_the_callable(no_watcher: str,
                                                         actors: list[str]) -> None:
    # When dramatiq's CLI loads the callable `podfleet worker` gives it
    loaded = run_python(LOAD_AS_DRAMATIQ_DOES, BOOT_CALLABLE,
                        env={NO_WATCHER_VARIABLE: no_watcher,
                             "PODFLEET_QUEUE_RATES": "etl=50"})
    # Then its broker is the booted one, watcher or not as --no-watcher said
    assert loaded["broker"] == SteadyRedisBroker.__name__
    assert loaded["actors"] == actors
    assert "podfleet.launch.etl" in loaded["queues"]
