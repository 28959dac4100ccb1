"""``podfleet worker``: run launcher (and watcher) actors in dramatiq worker processes.

The parent validates the settings (a bad one exits 2 naming its variable), prepares the
per-host metrics directory and endpoint, then runs dramatiq's own CLI
(``python -m dramatiq podfleet.workers.boot:boot_process``, which boots each worker
process) with podfleet's tuning in the environment, forwarding SIGINT/SIGTERM so dramatiq
shuts its processes down cleanly.
``podfleet worker --check`` validates the settings, reaches Redis and the Kubernetes API, and
exits.

Only the standard library and settings are imported at module level: prometheus-client must
not be imported before the multiprocess directory is prepared.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from podfleet.settings import Settings, SettingsError, redact_url

# dramatiq's "module:callable" form: the callable boots the process and installs its broker.
BOOT_CALLABLE = "podfleet.workers.boot:boot_process"
# Set in the worker processes' environment by --no-watcher; read by podfleet.workers.boot.
NO_WATCHER_VARIABLE = "PODFLEET_WORKER_NO_WATCHER"


#: ``podfleet --help``'s line for this subcommand.
HELP = "run launcher/watcher worker processes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", "-p", type=int, default=2,
                        help="worker processes (default: 2)")
    parser.add_argument("--threads", "-t", type=int, default=8,
                        help="worker threads per process (default: 8)")
    parser.add_argument("--queues", "-Q", nargs="*", default=None,
                        help="launch only the tasks of these task queues, comma-separated "
                             "('default' and the names in PODFLEET_QUEUE_RATES; default: all "
                             "of them)")
    parser.add_argument("--no-watcher", action="store_true",
                        help="do not run the watcher actor in these processes")
    parser.add_argument("--check", action="store_true",
                        help="validate settings, reach Redis and the Kubernetes API, and exit")
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="more logging (dramatiq's -v)")
    parser.add_argument("--airflow-config", metavar="AIRFLOW_CFG", default=None,
                        help="also read settings from this airflow.cfg, as the Airflow "
                             "executor does: [podfleet], then PODFLEET_* variables, then "
                             "[kubernetes_executor] (AIRFLOW__SECTION__OPTION variables too)")


def validate(settings: Settings) -> None:
    """Everything a worker needs that can be checked before starting; raises SettingsError."""
    settings.require_signing_key()
    from podfleet.pods.factory import load_pod_template

    load_pod_template(settings.pods.template_file)


def _kube_client(settings: Settings, spec: Any) -> Any:
    from podfleet.kube.client import KubeClient

    try:
        return KubeClient.from_cluster(spec, timeout_seconds=settings.kubernetes.timeout_seconds)
    except Exception as exc:  # kubeconfig missing or unreadable, no in-cluster env, …
        source = "PODFLEET_IN_CLUSTER" if spec.in_cluster else "PODFLEET_KUBECONFIG"
        if settings.clusters.file is not None:
            source = f"PODFLEET_CLUSTERS_FILE: cluster {spec.name!r}"
        raise SettingsError(f"{source}: cannot load Kubernetes configuration: {exc}") from None


def check(settings: Settings) -> int:
    """Reach Redis and every cluster's Kubernetes API; print what was checked; 0 when all is
    well."""
    import redis

    from podfleet.kube.errors import KubeError, Unreachable
    from podfleet.redis_client import connect as connect_redis

    ok = True
    try:
        connect_redis(settings.redis.url, socket_connect_timeout=5).ping()
        print(f"redis: ok ({redact_url(settings.redis.url)})")
    except redis.RedisError as exc:
        ok = False
        print(f"redis: FAILED ({redact_url(settings.redis.url)}): {exc}")
    for spec in settings.clusters.configured:
        kube = _kube_client(settings, spec)
        namespace = next((n for n in spec.namespaces if n != "*"),
                         settings.kubernetes.namespace)
        name = "kubernetes" if spec.name == "default" else f"kubernetes {spec.name}"
        try:
            kube.request("GET", kube.pods_path(namespace), query={"limit": 1})
            print(f"{name}: ok ({kube.host}, namespace {namespace})")
        except (KubeError, Unreachable) as exc:
            ok = False
            print(f"{name}: FAILED ({kube.host}): {exc}")
        finally:
            kube.close()
    return 0 if ok else 1


def consumed_queues(settings: Settings, names: list[str] | None, *, watcher: bool
                    ) -> list[str]:
    """The dramatiq queues a worker consumes for ``--queues names`` (None: every task queue).

    A name is a task queue (``default`` or one of PODFLEET_QUEUE_RATES) or a dramatiq queue
    name itself; the watcher's queue is added unless ``--no-watcher``. Anything else would
    consume a queue nobody sends to, so it is refused, naming what is configured.
    """
    from podfleet.broker import WATCH_QUEUE
    from podfleet.contracts.queues import configured_routes, queue_name_problem

    routes = configured_routes(settings)
    if not names:
        chosen = [route.broker_queue for route in routes]
    else:
        by_name = {route.name: route.broker_queue for route in routes}
        by_name.update({route.broker_queue: route.broker_queue for route in routes})
        by_name[WATCH_QUEUE] = WATCH_QUEUE
        chosen = []
        for name in (n.strip() for arg in names for n in arg.split(",")):
            if not name:
                continue
            trouble = queue_name_problem(name)
            if trouble:
                raise SettingsError(f"--queues: {name!r} is invalid: {trouble}")
            if name not in by_name:
                known = ", ".join(route.name for route in routes)
                raise SettingsError(
                    f"--queues: {name!r} is not a configured task queue (configured: {known}; "
                    "add it to PODFLEET_QUEUE_RATES, as on the executors)")
            chosen.append(by_name[name])
        if not chosen:
            raise SettingsError("--queues: no queue named")
    if watcher:
        chosen.append(WATCH_QUEUE)
    return list(dict.fromkeys(chosen))


def _start_metrics(settings: Settings, queues: list[str]) -> tuple[Any, str | None]:
    """Prepare the multiprocess directory and serve the host's endpoint (best effort)."""
    try:
        from podfleet.monitoring import exposition
    except ImportError:
        return None, None
    directory = exposition.prepare_multiprocess_dir(settings)
    try:
        server = exposition.serve_worker_metrics(settings, queues)
    except OSError as exc:
        print(f"podfleet worker: metrics endpoint not started: {exc}", file=sys.stderr)
        server = None
    return server, directory


def dramatiq_command(args: argparse.Namespace, queues: list[str]) -> list[str]:
    command = [sys.executable, "-m", "dramatiq", BOOT_CALLABLE,
               "--processes", str(args.processes), "--threads", str(args.threads),
               "--queues", *queues]
    if args.verbose:
        command.append("-" + "v" * args.verbose)
    return command


def airflow_environment(airflow_config: str | None) -> dict[str, str]:
    """The ``PODFLEET_*`` values an airflow.cfg implies (:mod:`podfleet.settings.airflow_config`)
    when one is named, on top of this process's environment; the worker processes get them."""
    if not airflow_config:
        return {}
    from pathlib import Path

    from podfleet.settings.airflow_config import (
        AirflowConfigFile,
        ignored_options,
        ignored_options_warning,
        podfleet_environ,
    )

    config = AirflowConfigFile(Path(airflow_config))
    ignored = ignored_options(config.get)
    if ignored:
        print(f"podfleet worker: {ignored_options_warning(ignored)}", file=sys.stderr)
    return {name: value for name, value in podfleet_environ(config.get).items()
            if os.environ.get(name) != value}


def run(args: argparse.Namespace) -> int:
    if args.processes < 1 or args.threads < 1:
        raise SettingsError("--processes and --threads must be at least 1")
    from_airflow = airflow_environment(args.airflow_config)
    settings = Settings.from_env({**os.environ, **from_airflow})
    validate(settings)
    queues = consumed_queues(settings, args.queues, watcher=not args.no_watcher)
    if args.check:
        return check(settings)
    for spec in settings.clusters.configured:  # each cluster's configuration loads
        _kube_client(settings, spec).close()

    from podfleet.broker import WATCH_QUEUE, worker_environment

    server, metrics_dir = _start_metrics(settings, queues)
    launch_queues = len([q for q in queues if q != WATCH_QUEUE])
    # os.environ as it is now: it holds the metrics directory _start_metrics exported.
    env = {**os.environ, **from_airflow, **worker_environment(args.threads, launch_queues)}
    if args.no_watcher:
        env[NO_WATCHER_VARIABLE] = "1"
    child = subprocess.Popen(dramatiq_command(args, queues), env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.kill()
            child.wait()
        if server is not None:
            server.close()
        if metrics_dir and not settings.metrics.multiprocess_dir:
            from podfleet.monitoring import exposition

            exposition.remove_multiprocess_dir(metrics_dir)
    return code
