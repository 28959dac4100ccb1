"""podfleet's configuration: one object, read from ``PODFLEET_*`` environment variables.

Every variable has a documented default (see ``docs/configuration.md``, generated from
:data:`VARIABLES`). An invalid value fails at start with a :class:`SettingsError` that names
the variable and says what it must be, instead of failing later somewhere less obvious.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from podfleet.kube.rules import dns1123_label_errors, label_value_errors

T = TypeVar("T")


class SettingsError(ValueError):
    """A PODFLEET_* variable has a value podfleet cannot use; the message names it."""


class DeletePolicy(StrEnum):
    """Which finished pods the watcher deletes."""

    ALWAYS = "always"
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    NEVER = "never"


class QueuedTimeoutAction(StrEnum):
    RELAUNCH = "relaunch"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str
    doc: str


VARIABLES: tuple[Variable, ...] = (
    Variable("PODFLEET_REDIS_URL", "redis://127.0.0.1:6379/0",
             "Redis for the broker, rate limiter, watcher lease and event streams: "
             "`redis://`, `rediss://`, `unix://`, or through Redis Sentinel "
             "`redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]` "
             "(the sentinels; the name they monitor; the password is the primary's)."),
    Variable("PODFLEET_REDIS_PREFIX", "podfleet", "Prefix of every Redis key podfleet owns."),
    Variable("PODFLEET_DATABASE_URL", "sqlite:///.podfleet/podfleet.sqlite",
             "Metadata DB (SQLAlchemy URL). SQLite by default; PostgreSQL in production "
             "(postgresql+psycopg://user@host/db)."),
    Variable("PODFLEET_NAMESPACE", "default", "Namespace new pods are created in."),
    Variable("PODFLEET_WATCH_NAMESPACES", "",
             "Comma-separated namespaces the watcher watches; empty = PODFLEET_NAMESPACE; "
             "'*' = all namespaces."),
    Variable("PODFLEET_KUBECONFIG", "",
             "Kubeconfig file; empty = $KUBECONFIG or ~/.kube/config."),
    Variable("PODFLEET_KUBE_CONTEXT", "", "Kubeconfig context; empty = current context."),
    Variable("PODFLEET_IN_CLUSTER", "false",
             "Use the pod's service account (in-cluster config) instead of a kubeconfig."),
    Variable("PODFLEET_WORKER_IMAGE", "python:3.11-slim",
             "Image of the task container when neither template nor override names one."),
    Variable("PODFLEET_IMAGE_PULL_POLICY", "IfNotPresent", "Always, IfNotPresent or Never."),
    Variable("PODFLEET_POD_TEMPLATE_FILE", "", "YAML pod template every task pod starts from."),
    Variable("PODFLEET_PARALLELISM", "1024",
             "Tasks an executor runs at once (queued + running); 0 = unlimited."),
    Variable("PODFLEET_LAUNCH_RATE", "100",
             "Pod creations per second across the whole pool; 0 = no limit."),
    Variable("PODFLEET_LAUNCH_BURST", "", "Creations allowed at once above the rate; "
             "empty = the rate (one second's worth)."),
    Variable("PODFLEET_BATCH_SIZE", "50", "Launch requests per broker message."),
    Variable("PODFLEET_LAUNCH_MAX_ATTEMPTS", "8",
             "Create attempts per pod on retryable errors (429, 403 quota, 5xx, timeouts) "
             "before the task fails with the last reason."),
    Variable("PODFLEET_LAUNCH_BACKOFF_SECONDS", "0.5", "First retry delay; doubles, jittered."),
    Variable("PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS", "30", "Longest retry delay."),
    Variable("PODFLEET_KUBE_TIMEOUT_SECONDS", "10", "Timeout of one Kubernetes API request."),
    Variable("PODFLEET_LAUNCH_QUEUE", "podfleet.launch",
             "dramatiq queue of the default task queue's launch messages; a task queue listed "
             "in PODFLEET_QUEUE_RATES gets `<this>.<queue>`."),
    Variable("PODFLEET_QUEUE_RATES", "",
             "Task queues with a dramatiq queue and a rate limit of their own, as "
             "`queue=rate,…` (pod creations per second, 0 = no limit), e.g. `etl=50,ml=10`. "
             "A task whose queue is unlisted (or `default`, or none) goes to the default queue "
             "and shares PODFLEET_LAUNCH_RATE, so the pool's total creation rate is at most "
             "the sum of the configured rates. Executors and workers must agree on it."),
    Variable("PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS", "15",
             "A worker silent this long counts as dead: its unacknowledged launch messages "
             "are redelivered to other workers."),
    Variable("PODFLEET_SIGNING_KEY", "",
             "Shared secret (≥ 16 bytes) that signs launch messages. Required by executors "
             "and workers; the demo makes a random one."),
    Variable("PODFLEET_DELETE_POLICY", "always",
             "Finished pods to delete: always, on_success, on_failure, never."),
    Variable("PODFLEET_DELETE_DELAY_SECONDS", "0", "Keep finished pods this long first."),
    Variable("PODFLEET_LOG_ARCHIVE", ".podfleet/logs",
             "Where the watcher keeps each pod's final log before deleting the pod: a "
             "directory, or an fsspec URL (s3://bucket/prefix, gs://…, memory://, file://; "
             "needs `pip install 'podfleet[logs]'` and the filesystem's package); "
             "'off' = do not archive."),
    Variable("PODFLEET_LOG_RETENTION_DAYS", "30",
             "Archived logs older than this many days are deleted by the watcher (at its "
             "start, then hourly); 0 = keep them (e.g. a bucket lifecycle rule expires them)."),
    Variable("PODFLEET_EXECUTOR_ID", "",
             "This executor's id (a label value); empty = <hostname>-<random>."),
    Variable("PODFLEET_HEARTBEAT_SECONDS", "5", "How often an executor heartbeats."),
    Variable("PODFLEET_HEARTBEAT_TIMEOUT_SECONDS", "60",
             "After this long without a heartbeat an executor counts as dead and its pods "
             "may be adopted."),
    Variable("PODFLEET_QUEUED_TIMEOUT_SECONDS", "600",
             "A task QUEUED this long without a pod is relaunched or failed."),
    Variable("PODFLEET_QUEUED_TIMEOUT_ACTION", "relaunch", "relaunch or fail."),
    Variable("PODFLEET_PENDING_TIMEOUT_SECONDS", "300",
             "A task whose pod was created but has not started running this long (stuck "
             "Pending: unschedulable, an image that never arrives) fails with the pod's "
             "reason, and its pod is deleted; 0 = never."),
    Variable("PODFLEET_WATCHER_LEASE_SECONDS", "15",
             "Watcher lease time; a dead watcher is replaced within it."),
    Variable("PODFLEET_FATAL_CONTAINER_REASONS",
             "ErrImagePull,ImagePullBackOff,InvalidImageName,CreateContainerConfigError",
             "Waiting reasons of a Pending pod that fail its task."),
    Variable("PODFLEET_METRICS_PORT", "9464",
             "Port of this host's /metrics endpoint (workers share it); 0 = off."),
    Variable("PODFLEET_METRICS_HOST", "0.0.0.0",
             "Address this host's /metrics endpoint binds (127.0.0.1 keeps it local)."),
    Variable("PODFLEET_METRICS_DIR", "",
             "prometheus-client multiprocess directory for worker processes; empty = a "
             "private temporary directory per worker command."),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}

# PODFLEET_* names that are not settings: the task identity podfleet puts into every task
# pod's environment (podfleet.pods.factory), the checkout root the scripts export, the
# worker command's private switch, and the test and load-test options.
_OTHER_VARIABLES = frozenset({
    "PODFLEET_DAG_ID", "PODFLEET_TASK_ID", "PODFLEET_RUN_ID", "PODFLEET_MAP_INDEX",
    "PODFLEET_TRY_NUMBER", "PODFLEET_LAUNCH_ID", "PODFLEET_POD_NAME", "PODFLEET_ROOT",
    "PODFLEET_WORKER_NO_WATCHER", "PODFLEET_AIRFLOW_PYTHON",
})
_OTHER_PREFIXES = ("PODFLEET_TEST_", "PODFLEET_LT_")

# The waiting reasons a kubelet reports for a container that has not started
# (kubelet's image and container-runtime errors, plus the two transient ones).
KUBELET_WAITING_REASONS = frozenset({
    "ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff",
    "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable", "ErrImageInspect",
    "SignatureValidationFailed", "CreateContainerConfigError", "CreateContainerError",
    "PreStartHookError", "PostStartHookError", "RunContainerError", "CrashLoopBackOff",
    "PreCreateHookError",
})

# dramatiq's own rule for queue names; anything else fails only when a worker declares it.
_QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")
#: The task queue of tasks that name none (Airflow's ``operators.default_queue``).
DEFAULT_QUEUE = "default"


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue name, or None. The one rule for every queue name podfleet
    takes (PODFLEET_LAUNCH_QUEUE, PODFLEET_QUEUE_RATES, a task's ``queue=``, ``worker
    --queues``): dramatiq's, less the suffixes it reserves for delay and dead-letter queues."""
    if not isinstance(name, str):
        return f"a queue name must be a string, not {type(name).__name__}"
    if not _QUEUE_NAME.fullmatch(name) or len(name) > 200:
        return ("a queue name starts with a letter or '_' and has only letters, digits, '.', "
                "'_' and '-' (at most 200 characters)")
    if name.endswith((".DQ", ".XQ")) or name in ("DQ", "XQ"):
        return "a queue name must not end in DQ or XQ (dramatiq's delay and dead-letter queues)"
    return None


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    prefix: str


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    namespace: str
    watch_namespaces: tuple[str, ...]  # ("*",) means all namespaces
    kubeconfig: str | None
    context: str | None
    in_cluster: bool
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class PodSettings:
    image: str
    pull_policy: str
    template_file: Path | None
    delete_policy: DeletePolicy
    delete_delay_seconds: float


@dataclass(frozen=True, slots=True)
class LogSettings:
    archive: str | None  # None: finished pods' logs are not archived
    retention_days: float


@dataclass(frozen=True, slots=True)
class LaunchSettings:
    queue: str  # the default task queue's dramatiq queue
    rate: float  # the default task queue's rate limit
    burst: int
    batch_size: int
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    #: Task queues with a dramatiq queue and a rate of their own (PODFLEET_QUEUE_RATES).
    queue_rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    heartbeat_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    executor_id: str
    parallelism: int
    heartbeat_seconds: float
    heartbeat_timeout_seconds: float
    queued_timeout_seconds: float
    queued_timeout_action: QueuedTimeoutAction
    pending_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    lease_seconds: float
    fatal_container_reasons: frozenset[str]


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    port: int
    host: str
    multiprocess_dir: str | None


@dataclass(frozen=True, slots=True)
class Settings:
    """All of podfleet's configuration, grouped by concern."""

    redis: RedisSettings
    database: DatabaseSettings
    kubernetes: KubernetesSettings
    pods: PodSettings
    logs: LogSettings
    launch: LaunchSettings
    broker: BrokerSettings
    executor: ExecutorSettings
    watcher: WatcherSettings
    metrics: MetricsSettings
    signing_key: bytes | None = field(repr=False)

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
        """Read settings from ``environ`` (default: the process environment)."""
        env = _Reader(os.environ if environ is None else environ)
        env.reject_unknown()
        rate = env.number("PODFLEET_LAUNCH_RATE", float, minimum=0)
        burst_text = env.text("PODFLEET_LAUNCH_BURST")
        burst = (env.number("PODFLEET_LAUNCH_BURST", int, minimum=1) if burst_text
                 else max(1, int(rate)))
        namespace = env.text("PODFLEET_NAMESPACE")
        _check(dns1123_label_errors(namespace), "PODFLEET_NAMESPACE", namespace)
        watch = tuple(n.strip() for n in env.text("PODFLEET_WATCH_NAMESPACES").split(",")
                      if n.strip()) or (namespace,)
        if watch != ("*",):
            for ns in watch:
                _check(dns1123_label_errors(ns), "PODFLEET_WATCH_NAMESPACES", ns)
        executor_id = env.text("PODFLEET_EXECUTOR_ID") or default_executor_id()
        _check(label_value_errors(executor_id) or ([] if executor_id else ["empty"]),
               "PODFLEET_EXECUTOR_ID", executor_id)
        pull_policy = env.text("PODFLEET_IMAGE_PULL_POLICY")
        if pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise SettingsError(
                f"PODFLEET_IMAGE_PULL_POLICY must be Always, IfNotPresent or Never, "
                f"got {pull_policy!r}")
        template = env.text("PODFLEET_POD_TEMPLATE_FILE")
        if template and not Path(template).is_file():
            raise SettingsError(f"PODFLEET_POD_TEMPLATE_FILE: no such file {template!r}")
        key_text = env.text("PODFLEET_SIGNING_KEY")
        if key_text and len(key_text.encode()) < 16:
            raise SettingsError("PODFLEET_SIGNING_KEY must be at least 16 bytes long")
        metrics_dir = env.text("PODFLEET_METRICS_DIR")
        if metrics_dir:
            _check_writable_dir("PODFLEET_METRICS_DIR", metrics_dir)
        queue = env.text("PODFLEET_LAUNCH_QUEUE") or "podfleet.launch"
        _check([p for p in [queue_name_problem(queue)] if p], "PODFLEET_LAUNCH_QUEUE", queue)
        queue_rates = env.queue_rates("PODFLEET_QUEUE_RATES")
        heartbeat = env.number("PODFLEET_HEARTBEAT_SECONDS", float, minimum=0.05)
        heartbeat_timeout = env.number("PODFLEET_HEARTBEAT_TIMEOUT_SECONDS", float,
                                       minimum=0.1)
        if heartbeat_timeout <= heartbeat:
            raise SettingsError(
                f"PODFLEET_HEARTBEAT_TIMEOUT_SECONDS ({heartbeat_timeout:g}) must be longer "
                f"than PODFLEET_HEARTBEAT_SECONDS ({heartbeat:g}), or every live executor "
                "counts as dead")
        fatal = frozenset(r.strip() for r in
                          env.text("PODFLEET_FATAL_CONTAINER_REASONS").split(",") if r.strip())
        unknown = sorted(fatal - KUBELET_WAITING_REASONS)
        if unknown:
            hint = difflib.get_close_matches(unknown[0], KUBELET_WAITING_REASONS, n=1)
            raise SettingsError(
                f"PODFLEET_FATAL_CONTAINER_REASONS: {unknown[0]!r} is not a waiting reason a "
                "kubelet reports" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        metrics_host = env.text("PODFLEET_METRICS_HOST") or "0.0.0.0"
        try:
            socket.getaddrinfo(metrics_host, None, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise SettingsError(f"PODFLEET_METRICS_HOST must be an IP address, got "
                                f"{metrics_host!r}") from None
        log_archive = env.text("PODFLEET_LOG_ARCHIVE")
        if "://" in log_archive and not log_archive.split("://", 1)[0].replace(
                "+", "").replace("-", "").isalnum():
            raise SettingsError(
                f"PODFLEET_LOG_ARCHIVE must be a directory or a URL such as "
                f"s3://bucket/prefix, got {log_archive!r}")
        return cls(
            redis=RedisSettings(
                url=_redis_url(env.url("PODFLEET_REDIS_URL", (
                    "redis://", "rediss://", "unix://", "redis+sentinel://"))),
                prefix=env.text("PODFLEET_REDIS_PREFIX") or "podfleet",
            ),
            database=DatabaseSettings(
                url=env.url("PODFLEET_DATABASE_URL", ("sqlite:", "postgresql"))),
            kubernetes=KubernetesSettings(
                namespace=namespace,
                watch_namespaces=watch,
                kubeconfig=env.text("PODFLEET_KUBECONFIG") or None,
                context=env.text("PODFLEET_KUBE_CONTEXT") or None,
                in_cluster=env.boolean("PODFLEET_IN_CLUSTER"),
                timeout_seconds=env.number("PODFLEET_KUBE_TIMEOUT_SECONDS", float,
                                           minimum=0.1),
            ),
            pods=PodSettings(
                image=env.text("PODFLEET_WORKER_IMAGE") or _DEFAULTS["PODFLEET_WORKER_IMAGE"],
                pull_policy=pull_policy,
                template_file=Path(template) if template else None,
                delete_policy=env.choice("PODFLEET_DELETE_POLICY", DeletePolicy),
                delete_delay_seconds=env.number("PODFLEET_DELETE_DELAY_SECONDS", float,
                                                minimum=0),
            ),
            logs=LogSettings(
                archive=None if log_archive.lower() in ("", "off", "none") else log_archive,
                retention_days=env.number("PODFLEET_LOG_RETENTION_DAYS", float, minimum=0),
            ),
            launch=LaunchSettings(
                queue=queue,
                rate=rate,
                burst=burst,
                batch_size=env.number("PODFLEET_BATCH_SIZE", int, minimum=1, maximum=1000),
                max_attempts=env.number("PODFLEET_LAUNCH_MAX_ATTEMPTS", int, minimum=1),
                backoff_seconds=env.number("PODFLEET_LAUNCH_BACKOFF_SECONDS", float,
                                           minimum=0),
                backoff_max_seconds=env.number("PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS", float,
                                               minimum=0),
                queue_rates=queue_rates,
            ),
            broker=BrokerSettings(
                heartbeat_timeout_seconds=env.number(
                    "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS", float, minimum=1),
            ),
            executor=ExecutorSettings(
                executor_id=executor_id,
                parallelism=env.number("PODFLEET_PARALLELISM", int, minimum=0),
                heartbeat_seconds=heartbeat,
                heartbeat_timeout_seconds=heartbeat_timeout,
                queued_timeout_seconds=env.number("PODFLEET_QUEUED_TIMEOUT_SECONDS", float,
                                                  minimum=0),
                queued_timeout_action=env.choice("PODFLEET_QUEUED_TIMEOUT_ACTION",
                                                 QueuedTimeoutAction),
                pending_timeout_seconds=env.number("PODFLEET_PENDING_TIMEOUT_SECONDS", float,
                                                   minimum=0),
            ),
            watcher=WatcherSettings(
                lease_seconds=env.number("PODFLEET_WATCHER_LEASE_SECONDS", float,
                                         minimum=0.5),
                fatal_container_reasons=fatal,
            ),
            metrics=MetricsSettings(
                port=env.number("PODFLEET_METRICS_PORT", int, minimum=0, maximum=65535),
                host=metrics_host,
                multiprocess_dir=metrics_dir or None,
            ),
            signing_key=key_text.encode() if key_text else None,
        )


def _redis_url(url: str) -> str:
    """``url``, checked now when it names sentinels, so a typo stops the process at start."""
    from podfleet.redis_client import InvalidRedisUrl, is_sentinel_url, parse_sentinel_url

    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except InvalidRedisUrl as exc:
            raise SettingsError(f"PODFLEET_REDIS_URL: {exc} (expected redis+sentinel://"
                                f"host:port[,host:port...]/service_name[/db])") from None
    return url


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


def _check_writable_dir(name: str, path: str) -> None:
    """``path`` is a writable directory, or one that can be created (its nearest parent is)."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise SettingsError(f"{name}={path!r} is not a directory")
        if not os.access(target, os.W_OK | os.X_OK):
            raise SettingsError(f"{name}={path!r} is not writable by this user")
        return
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise SettingsError(f"{name}={path!r} cannot be created: {str(parent)!r} is not "
                            "writable by this user")


def _check(errors: list[str], name: str, value: str) -> None:
    if errors:
        raise SettingsError(f"{name}={value!r} is invalid: {errors[0]}")


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def text(self, name: str) -> str:
        return self._env.get(name, _DEFAULTS[name]).strip()

    def reject_unknown(self) -> None:
        """A PODFLEET_* variable podfleet does not know is a typo, not something to ignore."""
        for name in sorted(self._env):
            if (not name.startswith("PODFLEET_") or name in _DEFAULTS
                    or name in _OTHER_VARIABLES or name.startswith(_OTHER_PREFIXES)):
                continue
            hint = difflib.get_close_matches(name, _DEFAULTS, n=1)
            raise SettingsError(
                f"{name} is not a podfleet setting"
                + (f" (did you mean {hint[0]}?)" if hint else "")
                + "; see docs/configuration.md")

    def number(self, name: str, kind: Callable[[str], T], *, minimum: float | None = None,
               maximum: float | None = None) -> T:
        raw = self.text(name) or _DEFAULTS[name]
        what = "an integer" if kind is int else "a number"
        try:
            value: Any = kind(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        if (minimum is not None and value < minimum) or (
                maximum is not None and value > maximum):
            bounds = f" ≥ {minimum}" if minimum is not None else ""
            bounds += f" and ≤ {maximum}" if maximum is not None else ""
            raise SettingsError(f"{name} must be {what}{bounds}, got {raw!r}")
        return value  # type: ignore[no-any-return]

    def queue_rates(self, name: str) -> dict[str, float]:
        """``queue=rate,…``: each queue name valid and listed once, each rate finite, ≥ 0."""
        rates: dict[str, float] = {}
        for item in (i.strip() for i in self.text(name).split(",")):
            if not item:
                continue
            queue, equals, raw = (part.strip() for part in item.partition("="))
            if not equals:
                raise SettingsError(f"{name}: {item!r} must be queue=rate (e.g. etl=50)")
            _check([p for p in [queue_name_problem(queue)] if p], name, queue)
            if queue == DEFAULT_QUEUE:
                raise SettingsError(f"{name}: the default queue's rate is PODFLEET_LAUNCH_RATE")
            if queue in rates:
                raise SettingsError(f"{name}: queue {queue!r} is listed twice")
            try:
                rate = float(raw)
            except ValueError:
                rate = -1.0
            if not math.isfinite(rate) or rate < 0:
                raise SettingsError(f"{name}: the rate of {queue!r} must be a finite number "
                                    f"≥ 0 (creations per second), got {raw!r}")
            rates[queue] = rate
        return rates

    def boolean(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, enum: type[StrEnum]) -> Any:
        raw = self.text(name).lower().replace("-", "_")
        try:
            return enum(raw)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise SettingsError(f"{name} must be one of {allowed}, got {raw!r}") from None

    def url(self, name: str, schemes: tuple[str, ...]) -> str:
        raw = self.text(name)
        if not raw.startswith(schemes):
            raise SettingsError(
                f"{name} must start with one of {', '.join(schemes)}, got {raw!r}")
        return raw


def variables_markdown() -> str:
    """The table of every PODFLEET_* variable for docs/configuration.md (a test keeps it true)."""
    lines = [
        "# Configuration",
        "",
        "podfleet reads its configuration from environment variables, once, at start "
        "(`podfleet.settings.Settings.from_env`). An invalid value stops the process with a "
        "message naming the variable. This file is generated: "
        "`python -m podfleet.settings > docs/configuration.md`.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for var in VARIABLES:
        default = f"`{var.default}`" if var.default else "(empty)"
        lines.append(f"| `{var.name}` | {default} | {var.doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(variables_markdown(), end="")
