"""The ``podfleet sim`` flags of the simulated cluster and of fault injection.

``podfleet.simulator.cli`` calls ``add_arguments`` and ``apply_arguments``; ``--nodes`` is the
API server's flag (it sets ``config.cluster.nodes``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.faults import TIMEOUT_MODES, FaultConfig, VerbFaults, parse_faults_json

if TYPE_CHECKING:
    from podfleet.simulator.config import SimulatorConfig


def _verb_value(text: str) -> tuple[str, float]:
    verb, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected VERB=VALUE, got {text!r}")
    try:
        return verb.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the cluster and fault flags to ``parser``."""
    defaults = ClusterConfig()
    cluster = parser.add_argument_group("simulated cluster")
    cluster.add_argument("--node-cpu", default=defaults.node_cpu,
                         help="allocatable cpu per node (default %(default)s)")
    cluster.add_argument("--node-memory", default=defaults.node_memory,
                         help="allocatable memory per node (default %(default)s)")
    cluster.add_argument("--node-pods", type=int, default=defaults.node_pods,
                         help="max pods per node (default %(default)s)")
    cluster.add_argument("--schedule-delay", type=float, default=defaults.schedule_delay_s,
                         metavar="SECONDS", help="created → bound (default %(default)s)")
    cluster.add_argument("--start-delay", type=float,
                         default=defaults.container_start_delay_s, metavar="SECONDS",
                         help="ContainerCreating → Running (default %(default)s)")
    cluster.add_argument("--run-time", type=float, default=defaults.default_run_time_s,
                         metavar="SECONDS",
                         help="Running → ended, for pods without a duration annotation "
                         "(default %(default)s)")
    cluster.add_argument("--local", action="store_true",
                         help="run each pod's container command as a local subprocess")

    faults = parser.add_argument_group("fault injection (changeable at run time: /_sim/faults)")
    faults.add_argument("--fault-latency", type=_verb_value, action="append", default=[],
                        metavar="VERB=MS", help="added latency per verb (* = every verb)")
    for code in ("429", "500", "503"):
        faults.add_argument(f"--fault-{code}", type=_verb_value, action="append", default=[],
                            metavar="VERB=RATE", help=f"share (0-1) of requests answered {code}")
    faults.add_argument("--fault-timeout", type=_verb_value, action="append", default=[],
                        metavar="VERB=RATE", help="share (0-1) of requests that time out")
    faults.add_argument("--timeout-mode", choices=TIMEOUT_MODES, default="hold",
                        help="a timed-out request is held then answered 504, or its "
                        "connection is closed")
    faults.add_argument("--timeout-hold", type=float, default=60.0, metavar="SECONDS")
    faults.add_argument("--retry-after", type=int, default=1, metavar="SECONDS",
                        help="Retry-After of injected 429s and 503s")
    faults.add_argument("--pod-quota", type=int, default=None, metavar="N",
                        help="most non-terminal pods per namespace (403 exceeded quota past it)")
    faults.add_argument("--rate-limit", type=float, default=None, metavar="RPS",
                        help="API requests per second before 429 TooManyRequests")
    faults.add_argument("--watch-drop", type=float, default=None, metavar="SECONDS",
                        help="cut every watch connection after this many seconds")
    faults.add_argument("--fault-history-events", type=int, default=None, metavar="N",
                        help="shrink the watch history to N events (forces 410 Expired)")
    faults.add_argument("--fault-seed", type=int, default=None, metavar="N")
    faults.add_argument("--faults-json", default=None, metavar="JSON",
                        help="the whole FaultConfig as JSON (other fault flags then ignored)")


def cluster_config_from_args(args: argparse.Namespace, base: ClusterConfig) -> ClusterConfig:
    """``base`` with the cluster flags applied."""
    base.node_cpu = args.node_cpu
    base.node_memory = args.node_memory
    base.node_pods = args.node_pods
    base.schedule_delay_s = args.schedule_delay
    base.container_start_delay_s = args.start_delay
    base.default_run_time_s = args.run_time
    base.local_mode = args.local
    return base


def fault_config_from_args(args: argparse.Namespace) -> FaultConfig:
    """The FaultConfig the fault flags describe (ValueError when out of range)."""
    if args.faults_json:
        return parse_faults_json(args.faults_json)
    verbs: dict[str, VerbFaults] = {}
    for attribute, field_name in (("fault_latency", "latency_ms"), ("fault_429", "error_429"),
                                  ("fault_500", "error_500"), ("fault_503", "error_503"),
                                  ("fault_timeout", "timeout")):
        for verb, value in getattr(args, attribute):
            setattr(verbs.setdefault(verb, VerbFaults()), field_name, value)
    faults = FaultConfig(
        verbs=verbs, retry_after_s=args.retry_after, timeout_mode=args.timeout_mode,
        timeout_hold_s=args.timeout_hold, pod_quota=args.pod_quota,
        rate_limit_rps=args.rate_limit, watch_drop_s=args.watch_drop,
        history_events=args.fault_history_events, seed=args.fault_seed,
    )
    faults.validate()
    return faults


def apply_arguments(args: argparse.Namespace, config: SimulatorConfig) -> None:
    """Set ``config.cluster`` and ``config.faults`` from the flags."""
    cluster_config_from_args(args, config.cluster)
    try:
        config.faults = fault_config_from_args(args)
    except ValueError as error:
        raise SystemExit(f"podfleet sim: {error}") from None


# The names the lead's brief uses, for callers that build their own parser.
add_cli_arguments = add_arguments


def config_from_args(args: argparse.Namespace) -> tuple[ClusterConfig, FaultConfig]:
    """``(ClusterConfig, FaultConfig)`` from the flags ``add_arguments`` defined."""
    return cluster_config_from_args(args, ClusterConfig()), fault_config_from_args(args)
