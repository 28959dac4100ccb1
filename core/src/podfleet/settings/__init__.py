"""podfleet's configuration: one object, read from ``PODFLEET_*`` environment variables.

Each setting is declared once, on the field of the group it belongs to (name, default, doc,
parser: :func:`podfleet.settings.declaration.setting`); ``Settings.from_env``,
``docs/configuration.md`` (``python -m podfleet.settings``) and Airflow's ``[podfleet]``
section are derived from those declarations (:data:`VARIABLES`). An invalid value fails at start
with a :class:`SettingsError` that names the variable and says what it must be, instead of
failing later somewhere less obvious.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints

from podfleet.contracts.clusters import (
    DEFAULT_CLUSTER,
    ClusterSpec,
    UnknownCluster,
    cluster_name_problem,
)
from podfleet.contracts.pod_status import KUBELET_WAITING_REASONS
from podfleet.contracts.states import TaskState
from podfleet.kube.rules import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
)
from podfleet.settings import clusters as cluster_file
from podfleet.settings import parsers
from podfleet.settings.declaration import Parser, SettingsError, Variable, declared, setting

__all__ = [
    "NOT_SETTINGS",
    "VARIABLES",
    "BrokerSettings",
    "ClusterSettings",
    "DatabaseSettings",
    "DeletePolicy",
    "ExecutorSettings",
    "KubernetesSettings",
    "LaunchSettings",
    "LogSettings",
    "MetricsSettings",
    "PodSecurityLevel",
    "PodSettings",
    "QueuedTimeoutAction",
    "RedisSettings",
    "Settings",
    "SettingsError",
    "Variable",
    "WatcherSettings",
    "default_executor_id",
    "redact_url",
]


class DeletePolicy(StrEnum):
    """Which finished pods the watcher deletes."""

    ALWAYS = "always"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    NEVER = "never"

    def deletes(self, state: TaskState) -> bool:
        """Whether this policy deletes a finished pod whose task ended in ``state`` (the
        watcher's deletes and the executor's resync both ask)."""
        if self is DeletePolicy.ALWAYS:
            return True
        if self is DeletePolicy.ON_SUCCESS:
            return state is TaskState.SUCCESS
        if self is DeletePolicy.ON_FAILURE:
            return state is TaskState.FAILED
        return False


class PodSecurityLevel(StrEnum):
    """The Pod Security Standards level every task pod is checked against before it is sent
    (``podfleet.pods.security``); ``off`` checks nothing (the upstream ``privileged``)."""

    OFF = "off"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


class QueuedTimeoutAction(StrEnum):
    RELAUNCH = "relaunch"
    FAIL = "fail"


def _check_sentinel_url(name: str, url: str) -> None:
    """A sentinel URL is parsed now, so a typo stops the process at start."""
    from podfleet.redis_client import InvalidRedisUrl, is_sentinel_url, parse_sentinel_url

    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except InvalidRedisUrl as exc:
            raise SettingsError(f"{name}: {exc} (expected redis+sentinel://"
                                f"host:port[,host:port...]/service_name[/db])") from None


def _check_namespace(name: str, value: str) -> None:
    parsers.invalid(dns1123_label_errors(value), name, value)


def _check_executor_id(name: str, value: str) -> None:
    parsers.invalid(label_value_errors(value), name, value)


def _template_file() -> Parser[Path | None]:
    def parse(name: str, raw: str) -> Path | None:
        if not raw:
            return None
        parsers.existing_file(name, raw)
        return Path(raw)
    return Parser(parse)


#: fsspec filesystems that live in one process's memory: nobody else could read the logs.
PROCESS_LOCAL_FILESYSTEMS = frozenset({"memory"})


def _check_fsspec_url(name: str, raw: str, scheme: str) -> None:
    """The URL's filesystem exists and its package imports (no connection is made)."""
    if scheme in PROCESS_LOCAL_FILESYSTEMS:
        raise SettingsError(f"{name}={raw!r}: {scheme}:// lives in one process's memory; the "
                            "watcher's archive would be invisible to every other process")
    try:
        import fsspec
    except ImportError:
        raise SettingsError(f"{name}={raw!r} needs fsspec: pip install 'podfleet[logs]' "
                            "(and the filesystem's package, such as s3fs for s3://)") from None
    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: {scheme!r} is not a filesystem fsspec "
                            "knows") from None
    except ImportError as exc:
        raise SettingsError(f"{name}={raw!r}: the {scheme}:// filesystem cannot be "
                            f"imported: {exc}") from None


def _log_archive() -> Parser[str | None]:
    """A directory this process can write in, or an fsspec URL whose filesystem imports and
    that other processes can reach; empty, ``off`` or ``none``: None (not archived)."""
    def parse(name: str, raw: str) -> str | None:
        if raw.lower() in ("", "off", "none"):
            return None
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else None
        if scheme is not None and not scheme.replace("+", "").replace("-", "").isalnum():
            raise SettingsError(f"{name} must be a directory or a URL such as "
                                f"s3://bucket/prefix, got {raw!r}")
        if scheme is None:
            parsers.writable_dir(name, raw)
        elif scheme == "file":
            parsers.writable_dir(name, raw.split("://", 1)[1])
        else:
            _check_fsspec_url(name, raw, scheme)
        return raw
    return Parser(parse)


def _signing_key() -> Parser[bytes | None]:
    def parse(name: str, raw: str) -> bytes | None:
        if not raw:
            return None
        if len(raw.encode()) < 16:
            raise SettingsError(f"{name} must be at least 16 bytes long")
        return raw.encode()
    return Parser(parse)


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str = setting(
        "PODFLEET_REDIS_URL", "redis://127.0.0.1:6379/0",
        "Redis for the broker, rate limiter, watcher lease and event streams: "
        "`redis://`, `rediss://`, `unix://`, or through Redis Sentinel "
        "`redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]` "
        "(the sentinels; the name they monitor; the password is the primary's).",
        parsers.url(("redis://", "rediss://", "unix://", "redis+sentinel://"),
                    check=_check_sentinel_url), secret=True)
    prefix: str = setting("PODFLEET_REDIS_PREFIX", "podfleet",
                          "Prefix of every Redis key podfleet owns.",
                          parsers.text(empty_is_default=True))


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = setting(
        "PODFLEET_DATABASE_URL", "sqlite:///.podfleet/podfleet.sqlite",
        "Metadata DB (SQLAlchemy URL). SQLite by default; PostgreSQL in production "
        "(postgresql+psycopg://user@host/db).",
        parsers.url(("sqlite:", "postgresql")), secret=True)


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    namespace: str = setting("PODFLEET_NAMESPACE", "default",
                             "Namespace new pods are created in.",
                             parsers.text(check=_check_namespace))
    #: ``("*",)`` means all namespaces; never empty (from_env fills in ``namespace``).
    watch_namespaces: tuple[str, ...] = setting(
        "PODFLEET_WATCH_NAMESPACES", "",
        "Comma-separated namespaces the watcher watches; empty = PODFLEET_NAMESPACE; "
        "'*' = all namespaces.",
        parsers.names(dns1123_label_errors, wildcard="*"))
    #: ``("*",)`` means any watched namespace; never empty (from_env fills in ``namespace``).
    task_namespaces: tuple[str, ...] = setting(
        "PODFLEET_TASK_NAMESPACES", "",
        "Comma-separated namespaces a task may run its pod in (its `executor_config` "
        "`namespace`, its `pod_override` or the pod template); empty = PODFLEET_NAMESPACE "
        "only; '*' = any watched namespace. Each must be watched "
        "(PODFLEET_WATCH_NAMESPACES), or its pods would never be seen to finish.",
        parsers.names(dns1123_label_errors, wildcard="*"))
    kubeconfig: str | None = setting("PODFLEET_KUBECONFIG", "",
                                     "Kubeconfig file; empty = $KUBECONFIG or ~/.kube/config.",
                                     parsers.optional_text())
    context: str | None = setting("PODFLEET_KUBE_CONTEXT", "",
                                  "Kubeconfig context; empty = current context.",
                                  parsers.optional_text())
    in_cluster: bool = setting(
        "PODFLEET_IN_CLUSTER", "false",
        "Use the pod's service account (in-cluster config) instead of a kubeconfig.",
        parsers.boolean())
    timeout_seconds: float = setting("PODFLEET_KUBE_TIMEOUT_SECONDS", "10",
                                     "Timeout of one Kubernetes API request.",
                                     parsers.number(minimum=0.1))


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The Kubernetes clusters this fleet runs pods on (``podfleet.contracts.clusters``)."""

    file: Path | None = setting(
        "PODFLEET_CLUSTERS_FILE", "",
        "YAML or JSON list of the clusters this fleet runs pods on, each "
        "`{name, kubeconfig, context, in_cluster, namespaces, launch_rate, max_pending_pods, "
        "labels}` (a field left out takes today's setting: PODFLEET_KUBECONFIG, "
        "PODFLEET_KUBE_CONTEXT, PODFLEET_IN_CLUSTER, PODFLEET_WATCH_NAMESPACES, "
        "PODFLEET_LAUNCH_RATE, PODFLEET_MAX_PENDING_PODS); checked at start: names unique "
        "DNS-1123 labels, each kubeconfig readable with its context, labels by Kubernetes' "
        "rules. Empty = one cluster named `default` made of those settings "
        "(docs/architecture.md, Clusters).", _template_file())
    #: Task queue -> the clusters its tasks may run on; a queue not listed: every cluster.
    queue_clusters: dict[str, tuple[str, ...]] = setting(
        "PODFLEET_QUEUE_CLUSTERS", "",
        "The clusters each task queue's tasks may run on, as `queue=cluster|cluster,…` "
        "(e.g. `gpu=gpu-east|gpu-west`; `default` is the queue of tasks without one); a "
        "queue not listed may run on every cluster. A task's own `cluster` or "
        "`cluster_selector` (executor_config) chooses among them. Each queue must be "
        "`default` or listed in PODFLEET_QUEUE_RATES, each cluster configured. Executors "
        "and workers must agree on it.", parsers.queue_clusters(cluster_name_problem))
    #: Every configured cluster, in the file's order (never empty after from_env).
    configured: tuple[ClusterSpec, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The configured clusters' names, in order."""
        return tuple(spec.name for spec in self.configured)

    def named(self, name: str) -> ClusterSpec:
        """The configured cluster ``name``; raises UnknownCluster."""
        for spec in self.configured:
            if spec.name == name:
                return spec
        raise UnknownCluster(name, self.names)


@dataclass(frozen=True, slots=True)
class PodSettings:
    image: str = setting("PODFLEET_WORKER_IMAGE", "python:3.11-slim",
                         "Image of the task container when neither template nor override "
                         "names one.", parsers.text(empty_is_default=True))
    pull_policy: str = setting("PODFLEET_IMAGE_PULL_POLICY", "IfNotPresent",
                               "Always, IfNotPresent or Never.",
                               parsers.one_of(("Always", "IfNotPresent", "Never")))
    template_file: Path | None = setting("PODFLEET_POD_TEMPLATE_FILE", "",
                                         "YAML pod template every task pod starts from.",
                                         _template_file())
    #: ``("*",)`` means any; empty: only the template's own (or the namespace's default).
    service_accounts: tuple[str, ...] = setting(
        "PODFLEET_SERVICE_ACCOUNTS", "",
        "Comma-separated service accounts a task may run its pod as (`serviceAccountName` "
        "from its `executor_config` or `pod_override`); empty = none: a task pod runs as "
        "the pod template's service account, or the namespace's default; '*' = any.",
        parsers.names(dns1123_subdomain_errors, wildcard="*"))
    security: PodSecurityLevel = setting(
        "PODFLEET_POD_SECURITY", "off",
        "Pod Security Standards level every task pod must meet, checked at submit and "
        "again before the launcher creates it: off, baseline or restricted (the upstream "
        "rules; a pod breaking one is refused naming the control). `baseline` is "
        "recommended wherever DAG authors are not cluster admins.",
        parsers.choice(PodSecurityLevel))
    delete_policy: DeletePolicy = setting(
        "PODFLEET_DELETE_POLICY", "always",
        "Finished pods to delete: always, on_success, on_failure, never.",
        parsers.choice(DeletePolicy))
    delete_delay_seconds: float = setting("PODFLEET_DELETE_DELAY_SECONDS", "0",
                                          "Keep finished pods this long first.",
                                          parsers.number(minimum=0))
    #: Task queue → the ``priorityClassName`` its pods get by default.
    queue_priority_classes: dict[str, str] = setting(
        "PODFLEET_QUEUE_PRIORITY_CLASSES", "",
        "The PriorityClass each task queue's pods get unless the task names its own "
        "(executor_config `priority_class_name`), as `queue=priorityclass,…`, e.g. "
        "`etl=high,ml=low` (`default` is the queue of tasks without one). A PriorityClass "
        "the cluster does not have fails the task at launch with the API's error.",
        parsers.queue_priority_classes(dns1123_subdomain_errors))


@dataclass(frozen=True, slots=True)
class LogSettings:
    #: None: finished pods' logs are not archived.
    archive: str | None = setting(
        "PODFLEET_LOG_ARCHIVE", ".podfleet/logs",
        "Where the watcher keeps each pod's final log before deleting the pod: a "
        "directory (checked at start with a write), or an fsspec URL (s3://bucket/prefix, "
        "gs://…, file://; needs `pip install 'podfleet[logs]'` and the filesystem's "
        "package, checked at start; not memory://, which no other process can read); "
        "'off' = do not archive.", _log_archive())
    retention_days: float = setting(
        "PODFLEET_LOG_RETENTION_DAYS", "30",
        "Archived logs older than this many days are deleted by the watcher (at its "
        "start, then hourly); 0 = keep them (e.g. a bucket lifecycle rule expires them).",
        parsers.number(minimum=0))


@dataclass(frozen=True, slots=True)
class LaunchSettings:
    #: The default task queue's dramatiq queue.
    queue: str = setting(
        "PODFLEET_LAUNCH_QUEUE", "podfleet.launch",
        "dramatiq queue of the default task queue's launch messages; a task queue listed "
        "in PODFLEET_QUEUE_RATES gets `<this>.<queue>`.", parsers.queue_name())
    #: The default task queue's rate limit.
    rate: float = setting("PODFLEET_LAUNCH_RATE", "100",
                          "Pod creations per second across the whole pool; 0 = no limit.",
                          parsers.number(minimum=0))
    #: Never None after from_env (which fills in the rate's one second's worth).
    burst: int = setting("PODFLEET_LAUNCH_BURST", "",
                         "Creations allowed at once above the rate; "
                         "empty = the rate (one second's worth).",
                         parsers.optional_integer(minimum=1))
    batch_size: int = setting("PODFLEET_BATCH_SIZE", "50", "Launch requests per broker message.",
                              parsers.integer(minimum=1, maximum=1000))
    max_attempts: int = setting(
        "PODFLEET_LAUNCH_MAX_ATTEMPTS", "8",
        "Create attempts per pod on retryable errors (429, 5xx, timeouts) "
        "before the task fails with the last reason.", parsers.integer(minimum=1))
    backoff_seconds: float = setting("PODFLEET_LAUNCH_BACKOFF_SECONDS", "0.5",
                                     "First retry delay; doubles, jittered.",
                                     parsers.number(minimum=0))
    backoff_max_seconds: float = setting("PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS", "30",
                                         "Longest retry delay.", parsers.number(minimum=0))
    #: Task queues with a dramatiq queue and a rate of their own.
    queue_rates: dict[str, float] = setting(
        "PODFLEET_QUEUE_RATES", "",
        "Task queues with a dramatiq queue and a rate limit of their own, as "
        "`queue=rate,…` (pod creations per second, 0 = no limit), e.g. `etl=50,ml=10`. "
        "A task whose queue is unlisted (or `default`, or none) goes to the default queue "
        "and shares PODFLEET_LAUNCH_RATE, so the pool's total creation rate is at most "
        "the sum of the configured rates. Executors and workers must agree on it.",
        parsers.queue_rates())
    quota_poll_seconds: float = setting(
        "PODFLEET_QUOTA_POLL_SECONDS", "2",
        "How often a launch parked on a full ResourceQuota (403 `exceeded quota`) looks again "
        "for room; a worker process reads a namespace's quotas at most twice per interval. "
        "Parked launches do not count create attempts; only PODFLEET_QUEUED_TIMEOUT_SECONDS "
        "ends the wait.", parsers.number(minimum=0.1, maximum=600))
    #: Task queue -> weight; a queue not listed weighs 1.
    queue_weights: dict[str, float] = setting(
        "PODFLEET_QUEUE_WEIGHTS", "",
        "Weights by which the task queues that have work share PODFLEET_LAUNCH_RATE and the "
        "pending caps (PODFLEET_MAX_PENDING_PODS, PODFLEET_NAMESPACE_MAX_PENDING_PODS), as "
        "`queue=weight,…` (e.g. `etl=3,ml=1,default=1`); a queue not listed weighs 1. "
        "Work-conserving: a queue without work for about a second takes no share, and its "
        "share returns within about a second once it has work. Each queue must be "
        "`default` or listed in PODFLEET_QUEUE_RATES. Executors and workers must agree on it.",
        parsers.queue_weights())
    max_pending_pods: int = setting(
        "PODFLEET_MAX_PENDING_PODS", "500",
        "Most podfleet pods that exist but are not yet Running, across every namespace and "
        "in each namespace unless PODFLEET_NAMESPACE_MAX_PENDING_PODS says otherwise; at "
        "the cap launches wait in their queue (no attempt spent) until pods start. Size it "
        "as creation rate × seconds a pod takes to start (docs/admission.md); 0 = no cap.",
        parsers.integer(minimum=0))
    namespace_max_pending_pods: dict[str, int] = setting(
        "PODFLEET_NAMESPACE_MAX_PENDING_PODS", "",
        "Per-namespace caps on pods that exist but are not yet Running, as "
        "`namespace=count,…` (e.g. `team-a=200`); each must be a task namespace "
        "(PODFLEET_TASK_NAMESPACES). Unlisted namespaces have PODFLEET_MAX_PENDING_PODS.",
        parsers.namespace_caps(dns1123_label_errors))
    queue_max_running: dict[str, int] = setting(
        "PODFLEET_QUEUE_MAX_RUNNING", "",
        "Pools: most pods of a task queue that exist and are not finished (pending + "
        "running), as `queue=count,…` (e.g. `etl=100`); at the cap the queue's launches wait "
        "until its pods end. Each must be `default` or listed in PODFLEET_QUEUE_RATES; "
        "unlisted queues have no cap.", parsers.queue_caps())


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    heartbeat_timeout_seconds: float = setting(
        "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS", "15",
        "A worker silent this long counts as dead: its unacknowledged launch messages "
        "are redelivered to other workers.", parsers.number(minimum=1))


def _cluster_name_errors(name: str) -> list[str]:
    """:func:`~podfleet.contracts.clusters.cluster_name_problem` as a list of complaints."""
    problem = cluster_name_problem(name)
    return [problem] if problem else []


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    #: Never empty after from_env (which fills in :func:`default_executor_id`).
    executor_id: str = setting(
        "PODFLEET_EXECUTOR_ID", "",
        "This executor's id (a label value); empty = <hostname>-<random>.",
        parsers.optional_text(check=_check_executor_id))
    parallelism: int = setting(
        "PODFLEET_PARALLELISM", "1024",
        "Tasks an executor runs at once (queued + running); 0 = unlimited.",
        parsers.integer(minimum=0))
    heartbeat_seconds: float = setting("PODFLEET_HEARTBEAT_SECONDS", "5",
                                       "How often an executor heartbeats.",
                                       parsers.number(minimum=0.05))
    heartbeat_timeout_seconds: float = setting(
        "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS", "60",
        "After this long without a heartbeat an executor counts as dead and its pods "
        "may be adopted.", parsers.number(minimum=0.1))
    queued_timeout_seconds: float = setting(
        "PODFLEET_QUEUED_TIMEOUT_SECONDS", "600",
        "A task QUEUED this long without a pod is relaunched or failed.",
        parsers.number(minimum=0))
    queued_timeout_action: QueuedTimeoutAction = setting(
        "PODFLEET_QUEUED_TIMEOUT_ACTION", "relaunch", "relaunch or fail.",
        parsers.choice(QueuedTimeoutAction))
    pending_timeout_seconds: float = setting(
        "PODFLEET_PENDING_TIMEOUT_SECONDS", "300",
        "A task whose pod was created but has not started running this long (stuck "
        "Pending: unschedulable, an image that never arrives) fails with the pod's "
        "reason, and its pod is deleted; 0 = never.", parsers.number(minimum=0))
    disruption_retries: int = setting(
        "PODFLEET_DISRUPTION_RETRIES", "3",
        "Times a try whose pod was disrupted (a DisruptionTarget condition: preempted, "
        "evicted or drained, deleted by the taint manager, stopped by its kubelet) is "
        "relaunched without spending one of the task's retries; past that it fails with "
        "the disruption's reason. 0 = a disruption fails the try like any failure.",
        parsers.integer(minimum=0))
    #: The clusters this executor places tasks on; empty: every configured cluster.
    clusters: tuple[str, ...] = setting(
        "PODFLEET_EXECUTOR_CLUSTERS", "",
        "The clusters this executor places its tasks on, comma-separated (each configured "
        "in PODFLEET_CLUSTERS_FILE); empty = every configured cluster. A task naming or "
        "selecting only others is refused at submit, naming them. With multi-team "
        "Airflow, each team's `[podfleet] executor_clusters` maps the team to its "
        "clusters (docs/airflow.md).",
        parsers.names(_cluster_name_errors))


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    lease_seconds: float = setting(
        "PODFLEET_WATCHER_LEASE_SECONDS", "15",
        "Watcher lease time; a dead watcher is replaced within it.",
        parsers.number(minimum=0.5))
    fatal_container_reasons: frozenset[str] = setting(
        "PODFLEET_FATAL_CONTAINER_REASONS",
        "ErrImagePull,ImagePullBackOff,InvalidImageName,CreateContainerConfigError",
        "Waiting reasons of a Pending pod that fail its task.",
        parsers.members(KUBELET_WAITING_REASONS, "a waiting reason a kubelet reports"))
    resync_seconds: float = setting(
        "PODFLEET_RESYNC_SECONDS", "300",
        "Level-triggered safety net against lost pod events: within this period each "
        "executor compares every unfinished task with its pod (paged, label-selected lists "
        "spread over the period) and repairs the difference, and the watcher relists and "
        "reconciles its per-pod records; 0 = off.", parsers.number(minimum=0))


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    port: int = setting("PODFLEET_METRICS_PORT", "9464",
                        "Port of this host's /metrics endpoint (workers share it); 0 = off.",
                        parsers.integer(minimum=0, maximum=65535))
    host: str = setting("PODFLEET_METRICS_HOST", "0.0.0.0",
                        "Address this host's /metrics endpoint binds (127.0.0.1 keeps it "
                        "local).", parsers.ip_address())
    multiprocess_dir: str | None = setting(
        "PODFLEET_METRICS_DIR", "",
        "prometheus-client multiprocess directory for worker processes; empty = a "
        "private temporary directory per worker command.",
        parsers.optional_text(check=parsers.writable_dir))


@dataclass(frozen=True, slots=True)
class Settings:
    """All of podfleet's configuration, grouped by concern."""

    redis: RedisSettings
    database: DatabaseSettings
    kubernetes: KubernetesSettings
    clusters: ClusterSettings
    pods: PodSettings
    logs: LogSettings
    launch: LaunchSettings
    broker: BrokerSettings
    executor: ExecutorSettings
    watcher: WatcherSettings
    metrics: MetricsSettings
    signing_key: bytes | None = setting(
        "PODFLEET_SIGNING_KEY", "",
        "Shared secret (≥ 16 bytes) that signs launch messages. Required by executors "
        "and workers; the demo makes a random one.", _signing_key(), secret=True)

    def require_signing_key(self) -> bytes:
        """The signing key; raises SettingsError when it is unset (executors and workers)."""
        if not self.signing_key:
            raise SettingsError(
                "PODFLEET_SIGNING_KEY is not set: executors and workers need the same secret "
                "(at least 16 bytes) to sign and verify launch messages"
            )
        return self.signing_key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: the process environment): every declared
        variable parsed, then the defaults that depend on another setting filled in and the
        rules that span settings checked (here, and only here)."""
        env = os.environ if environ is None else environ
        _reject_unknown(env)
        groups: dict[str, dict[str, Any]] = {
            name: {field: variable.read(env) for field, variable in declared(group)}
            for name, group in _GROUPS.items()}
        kube, launch, executor = groups["kubernetes"], groups["launch"], groups["executor"]
        kube["watch_namespaces"] = kube["watch_namespaces"] or (kube["namespace"],)
        if kube["task_namespaces"]:
            _check_task_namespaces(kube["task_namespaces"], kube["watch_namespaces"])
        kube["task_namespaces"] = kube["task_namespaces"] or (kube["namespace"],)
        if launch["burst"] is None:
            launch["burst"] = max(1, int(launch["rate"]))
        _check_queue_weights(launch["queue_weights"], launch["queue_rates"])
        _check_known_queues("PODFLEET_QUEUE_MAX_RUNNING", launch["queue_max_running"],
                            launch["queue_rates"])
        _check_namespace_caps(launch["namespace_max_pending_pods"], kube["task_namespaces"])
        executor["executor_id"] = executor["executor_id"] or default_executor_id()
        _fill_clusters(groups["clusters"], kube, launch, env, executor["clusters"])
        heartbeat = executor["heartbeat_seconds"]
        heartbeat_timeout = executor["heartbeat_timeout_seconds"]
        if heartbeat_timeout <= heartbeat:
            raise SettingsError(
                f"PODFLEET_HEARTBEAT_TIMEOUT_SECONDS ({heartbeat_timeout:g}) must be longer "
                f"than PODFLEET_HEARTBEAT_SECONDS ({heartbeat:g}), or every live executor "
                "counts as dead")
        own = {field: variable.read(env) for field, variable in declared(cls)}
        return cls(**{name: _GROUPS[name](**values) for name, values in groups.items()},
                   **own)


def _fill_clusters(clusters: dict[str, Any], kube: dict[str, Any], launch: dict[str, Any],
                   environ: Mapping[str, str], executor_clusters: tuple[str, ...] = ()
                   ) -> None:
    """``configured``: the clusters file's, or one ``default`` cluster of today's settings;
    then PODFLEET_QUEUE_CLUSTERS checked against them and the queues."""
    today = ClusterSpec(
        name=DEFAULT_CLUSTER, kubeconfig=kube["kubeconfig"], context=kube["context"],
        in_cluster=kube["in_cluster"], namespaces=kube["watch_namespaces"],
        launch_rate=launch["rate"], max_pending_pods=launch["max_pending_pods"])
    path = clusters["file"]
    clusters["configured"] = (cluster_file.load_clusters(path, today, environ=environ)
                              if path is not None else (today,))
    names = [spec.name for spec in clusters["configured"]]
    unknown_own = [name for name in executor_clusters if name not in names]
    if unknown_own:
        raise SettingsError(f"PODFLEET_EXECUTOR_CLUSTERS: cluster {unknown_own[0]!r} is not "
                            f"configured (configured: {', '.join(names)})")
    _check_known_queues("PODFLEET_QUEUE_CLUSTERS", clusters["queue_clusters"],
                        launch["queue_rates"])
    for queue, listed in clusters["queue_clusters"].items():
        unknown = [name for name in listed if name not in names]
        if unknown:
            raise SettingsError(f"PODFLEET_QUEUE_CLUSTERS: queue {queue!r}: cluster "
                                f"{unknown[0]!r} is not configured (configured: "
                                f"{', '.join(names)})")


def _check_task_namespaces(task: tuple[str, ...], watched: tuple[str, ...]) -> None:
    """A namespace tasks may use but nobody watches would run pods no task ever sees end."""
    if watched == ("*",):
        return
    if task == ("*",):
        return  # any watched namespace: the submit check keeps tasks within those
    unwatched = [name for name in task if name not in watched]
    if unwatched:
        raise SettingsError(
            f"PODFLEET_TASK_NAMESPACES: {', '.join(map(repr, unwatched))} not in "
            f"PODFLEET_WATCH_NAMESPACES ({','.join(watched)}): a pod there would never be "
            "seen to finish")


def _check_known_queues(setting_name: str, listed: Mapping[str, object],
                        rates: dict[str, float]) -> None:
    """A value for a queue no worker routes would never be used: most likely a typo."""
    unknown = [name for name in listed if name != "default" and name not in rates]
    if unknown:
        raise SettingsError(
            f"{setting_name}: unknown queue {unknown[0]!r} (it must be `default` or listed "
            "in PODFLEET_QUEUE_RATES)")


def _check_queue_weights(weights: dict[str, float], rates: dict[str, float]) -> None:
    _check_known_queues("PODFLEET_QUEUE_WEIGHTS", weights, rates)
    if not any(weights.get(name, 1.0) for name in ("default", *rates)):
        raise SettingsError("PODFLEET_QUEUE_WEIGHTS: every queue weighs 0; at least one needs "
                            "a weight above 0 (an unlisted queue weighs 1)")


def _check_namespace_caps(caps: dict[str, int], task: tuple[str, ...]) -> None:
    """A cap for a namespace no task may use caps nothing: most likely a typo."""
    if task == ("*",):
        return
    unknown = [name for name in caps if name not in task]
    if unknown:
        raise SettingsError(
            f"PODFLEET_NAMESPACE_MAX_PENDING_PODS: {unknown[0]!r} is not a task namespace "
            f"(PODFLEET_TASK_NAMESPACES: {','.join(task)})")


#: Settings' groups by field name, in declaration order.
_GROUPS: dict[str, type[Any]] = {
    field.name: get_type_hints(Settings)[field.name]
    for field in dataclasses.fields(Settings) if field.name not in dict(declared(Settings))}

#: Every PODFLEET_* setting, in the order of the groups that declare them.
VARIABLES: tuple[Variable, ...] = (
    *(variable for group in _GROUPS.values() for _, variable in declared(group)),
    *(variable for _, variable in declared(Settings)),
)

#: PODFLEET_* names that are not settings but are not typos either: the task identity
#: podfleet puts into every task pod's environment (podfleet.pods.factory), which a worker or
#: an executor running inside a task pod inherits; the checkout root scripts/bootstrap.sh
#: exports; and the worker command's switch to its child processes (podfleet.workers.cli).
NOT_SETTINGS = frozenset({
    "PODFLEET_DAG_ID", "PODFLEET_TASK_ID", "PODFLEET_RUN_ID", "PODFLEET_MAP_INDEX",
    "PODFLEET_TRY_NUMBER", "PODFLEET_LAUNCH_ID", "PODFLEET_POD_NAME",
    "PODFLEET_ROOT", "PODFLEET_WORKER_NO_WATCHER",
})

_SETTING_NAMES = frozenset(variable.name for variable in VARIABLES)


def _reject_unknown(environ: Mapping[str, str]) -> None:
    """A PODFLEET_* variable podfleet does not know is a typo, not something to ignore."""
    for name in sorted(environ):
        if not name.startswith("PODFLEET_") or name in _SETTING_NAMES or name in NOT_SETTINGS:
            continue
        hint = difflib.get_close_matches(name, _SETTING_NAMES, n=1)
        raise SettingsError(
            f"{name} is not a podfleet setting"
            + (f" (did you mean {hint[0]}?)" if hint else "")
            + "; see docs/configuration.md")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def default_executor_id() -> str:
    """``<hostname>-<8 hex>``: unique per executor process, valid as a label value."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host.strip('-_.')[:40] or 'executor'}-{uuid.uuid4().hex[:8]}"
