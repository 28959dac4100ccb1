"""`podfleet sim`: run the simulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import signal
import sys
from typing import Any

from podfleet.simulator.app import bind_socket, serve, url_of
from podfleet.simulator.config import SimulatorConfig, config_from_json, prepared
from podfleet.simulator.kubeconfig import write_kubeconfig
from podfleet.simulator.server import READY_PREFIX
from podfleet.simulator.tls import TlsConfig

# The cluster side adds its own flags (latencies, faults) through this module, if present:
# add_arguments(parser) and apply_arguments(args, config).
_CLUSTER_CLI = "podfleet.simulator.cluster.cli"


#: ``podfleet --help``'s line for this subcommand.
HELP = "serve a simulated Kubernetes cluster"


def _cluster_cli() -> Any:
    try:
        return importlib.import_module(_CLUSTER_CLI)
    except ModuleNotFoundError as exc:
        if exc.name != _CLUSTER_CLI:
            raise
        return None


#: Flags that set one SimulatorConfig field each, defaulting to its default:
#: (flag, field, type, help).
_CONFIG_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--grace-period", "default_termination_grace_period_s", int,
     "default terminationGracePeriodSeconds of pods, in seconds"),
    ("--bookmark-interval", "bookmark_interval_seconds", float,
     "seconds between BOOKMARK events on watches that allow them"),
    ("--events", "record_events", bool,
     "record Event objects as a real scheduler and kubelet do (default: on)"),
    ("--event-ttl", "event_ttl_seconds", float,
     "seconds an event is kept after its last write (the API server's --event-ttl)"),
    ("--event-limit", "event_limit", int, "most events kept; the oldest are dropped beyond it"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `podfleet sim` (and `python -m podfleet.simulator`)."""
    defaults = SimulatorConfig()
    parser.add_argument("--host", default=defaults.host, help="address to listen on")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (0 = a free one)")
    parser.add_argument("--nodes", type=int, default=None, help="number of simulated nodes")
    parser.add_argument("--kubeconfig-out", default=None, help="write a kubeconfig here")
    parser.add_argument(
        "--history-window",
        type=int,
        default=defaults.history_window_events,
        help="watch history kept, in events (older resourceVersions get 410 Expired)",
    )
    parser.add_argument(
        "--history-seconds",
        type=float,
        default=None,
        help="watch history kept, in seconds (default: no age limit)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="create this namespace at start (repeatable)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="require this bearer token (default: a generated one with TLS, any without)",
    )
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=defaults.tls.enabled,
        help="serve HTTPS with a generated CA, written into the kubeconfig (default: on); "
        "--no-tls serves plain HTTP (benchmarks, docker-compose)",
    )
    for flag, field, kind, text in _CONFIG_FLAGS:
        if kind is bool:
            parser.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction,
                                default=getattr(defaults, field), help=text)
        else:
            parser.add_argument(flag, dest=field, type=kind, default=getattr(defaults, field),
                                metavar=flag[2:].upper().replace("-", "_"), help=text)
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="WARNING", help="logging level")
    cluster_cli = _cluster_cli()
    if cluster_cli is not None:
        cluster_cli.add_arguments(parser)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the flags describe (`--config-json` wins when given)."""
    if args.config_json:
        text = sys.stdin.read() if args.config_json == "-" else args.config_json
        return config_from_json(text)
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        history_window_events=args.history_window,
        history_window_seconds=args.history_seconds,
        namespaces=list(args.namespaces),
        token=args.token,
        tls=TlsConfig(enabled=args.tls),
        **{field: getattr(args, field) for _, field, _, _ in _CONFIG_FLAGS},
    )
    if args.nodes is not None:
        config.cluster.nodes = args.nodes
    cluster_cli = _cluster_cli()
    if cluster_cli is not None:
        cluster_cli.apply_arguments(args, config)
    return config


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; print the URL once ready. Returns the exit code."""
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    config = prepared(config_from_args(args))
    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        print(f"podfleet sim: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2
    url = url_of(sock, tls=config.tls.enabled)
    if args.kubeconfig_out:
        ca_data = config.tls.ca_data() if config.tls.enabled else None
        write_kubeconfig(args.kubeconfig_out, url, token=config.token, ca_data=ca_data)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        def ready(_: object) -> None:
            print(f"{READY_PREFIX}{url}", flush=True)
            if args.kubeconfig_out:
                print(f"kubeconfig written to {args.kubeconfig_out}", flush=True)

        freezer = asyncio.create_task(_freeze_survivors(_FREEZE_INTERVAL_S))
        try:
            await serve(config, sock, stop, ready)
        finally:
            freezer.cancel()

    _install_fast_loop()
    _tune_gc()
    asyncio.run(main())
    return 0


#: Seconds between two `gc.freeze()` calls of the CLI (see `_freeze_survivors`).
_FREEZE_INTERVAL_S = 1.0


def _tune_gc() -> None:
    """Keep garbage collections from rescanning every stored object.

    The store holds hundreds of thousands of long-lived objects; with the default settings
    each full collection walks all of them (tens of milliseconds at 100,000 pods), which
    shows up as create latency spikes. Collections are made rarer, and whatever survives a
    full collection is frozen (moved out of the collector's sight). `_freeze_survivors` does
    the same every second, so younger collections stay small too.
    Only the CLI (and so process mode) does this: it changes the whole interpreter, and in
    thread mode that interpreter is the caller's.
    """

    def freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.set_threshold(10_000, 20, 10)
    gc.callbacks.append(freeze_after_full_collection)


async def _freeze_survivors(interval_s: float) -> None:
    """Freeze every object tracked by the collector, every `interval_s` seconds.

    With raised thresholds, a generation-1 collection otherwise scans up to ~200,000 objects
    (the pods created since the last full collection): a 70-150 ms pause at 1,000 creates/s,
    which was most of the create latency's p99. Frozen, the stored pods are never scanned
    again; they are still freed by reference counting when deleted (stored records form no
    reference cycles), and `gc.freeze()` itself costs next to nothing.
    """
    while True:
        await asyncio.sleep(interval_s)
        gc.freeze()


def _install_fast_loop() -> None:
    """Use uvloop when it is installed (it roughly halves the per-request overhead)."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="podfleet sim", description="Run the podfleet Kubernetes cluster simulator."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
