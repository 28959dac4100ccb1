"""Every Prometheus metric podfleet exports, defined once.

Processes import the metric objects from here and record into them; the names, labels and
buckets are a contract with the Grafana dashboard and the alert rules in ``monitoring/`` (a test
checks that every query there names a metric defined here). Names follow Prometheus
conventions: ``podfleet_`` prefix, base units (seconds), ``_total`` on counters.

Worker processes run in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``),
so gauges declare how values from several processes combine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from enum import StrEnum

from prometheus_client import Counter, Gauge, Histogram

from podfleet.contracts.events import EventSource
from podfleet.contracts.states import TaskState

# Pod launches take milliseconds on an idle cluster and minutes behind a quota or a slow image
# pull; prometheus-client's default buckets stop at 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0, 600.0, 1800.0)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# --- launch path -------------------------------------------------------------------------
LAUNCH_LATENCY = Histogram(
    "podfleet_launch_latency_seconds",
    "Time from a task's submit (queued) to the API server accepting its pod.",
    ["namespace"], buckets=LATENCY_BUCKETS)
QUEUE_WAIT = Histogram(
    "podfleet_queue_wait_seconds",
    "Time a launch message waited in the broker before a launcher actor started on it.",
    ["queue"], buckets=LATENCY_BUCKETS)
PODS_CREATED = Counter(
    "podfleet_pods_created_total",
    "Pod create outcomes: created, already_exists, invalid, failed (retry budget spent), "
    "expired (launch deadline passed), replayed (a redelivered or replayed launch whose "
    "pod was already created: nothing created), by the cluster the pod was placed on.",
    ["cluster", "namespace", "outcome"])
LAUNCH_RETRIES = Counter(
    "podfleet_launch_retries_total",
    "Pod creates retried, by the reason of the failed attempt (e.g. 429, 503, quota, timeout).",
    ["reason"])
QUOTA_WAITS = Counter(
    "podfleet_quota_waits_total",
    "Launches parked because a ResourceQuota of their namespace was full (a 403 "
    "`exceeded quota`, or others already waiting there): each launch counted once per wait.",
    ["namespace"])
QUOTA_PARKED = Gauge(
    "podfleet_quota_parked_launches",
    "Launches waiting for room in their namespace's ResourceQuota, as last seen by a worker.",
    ["namespace"], multiprocess_mode="livemax")
LAUNCH_BATCH_SIZE = Histogram(
    "podfleet_launch_batch_size",
    "Launch requests per broker message.", buckets=BATCH_BUCKETS)
MESSAGES_REJECTED = Counter(
    "podfleet_messages_rejected_total",
    "Launch messages refused and dead-lettered: bad signature, malformed, or undecodable "
    "(not a dramatiq message at all).",
    ["reason"])
RATE_LIMIT_WAIT = Histogram(
    "podfleet_rate_limit_wait_seconds",
    "Time a launcher waited for its task queue's cluster-wide rate limiter before a create.",
    ["queue"], buckets=LATENCY_BUCKETS)
RATE_LIMIT_GRANTED = Counter(
    "podfleet_rate_limit_granted_total",
    "Create permits granted by a task queue's cluster-wide rate limiter (rate() of it is the "
    "queue's launch rate).", ["queue"])
RATE_LIMIT_CONFIGURED = Gauge(
    "podfleet_rate_limit_per_second",
    "The configured cluster-wide pod creation limit of a task queue (0 = unlimited).",
    ["queue"], multiprocess_mode="max")
ADMISSION_WAITS = Counter(
    "podfleet_admission_waits_total",
    "Launch permits refused, by task queue and the budget that refused (pool: the queue's "
    "PODFLEET_QUEUE_MAX_RUNNING; pending: the cap on "
    "pods not yet Running; share: the queue's weighted share of the launch rate; ceiling: "
    "its PODFLEET_QUEUE_RATES rate; rate: the cluster's launch rate).", ["queue", "budget"])

# --- Kubernetes API ----------------------------------------------------------------------
KUBE_REQUESTS = Counter(
    "podfleet_kube_requests_total",
    "Kubernetes API requests by cluster, verb and HTTP status code (0 = no answer).",
    ["cluster", "verb", "code"])
KUBE_REQUEST_DURATION = Histogram(
    "podfleet_kube_request_duration_seconds",
    "Kubernetes API request latency by verb.", ["verb"], buckets=API_BUCKETS)

# --- completion path ---------------------------------------------------------------------
POD_START_LATENCY = Histogram(
    "podfleet_pod_start_latency_seconds",
    "Time from a pod's creation to its Running phase, from the pod's own timestamps.",
    ["namespace"], buckets=LATENCY_BUCKETS)
TASK_END_TO_END = Histogram(
    "podfleet_task_end_to_end_seconds",
    "Time from a task's submit to its terminal state, by final state.",
    ["state"], buckets=LATENCY_BUCKETS)
TASK_REPORT_LATENCY = Histogram(
    "podfleet_task_report_latency_seconds",
    "Time from a task's pod ending (as the watcher saw it, or resync) to the executor having "
    "applied it: in its event buffer, for Airflow's next sync.",
    buckets=LATENCY_BUCKETS)
WATCH_EVENTS = Counter(
    "podfleet_watch_events_total", "Pod watch events received, by type.", ["type"])
WATCH_RESTARTS = Counter(
    "podfleet_watch_restarts_total",
    "Watch streams restarted, by reason: expired (410), timeout, error, closed.",
    ["reason"])
WATCH_EVENT_LAG = Histogram(
    "podfleet_watch_event_lag_seconds",
    "Time from a pod's state change to its task event being published.",
    buckets=LATENCY_BUCKETS)
WATCHER_LEASE_HELD = Gauge(
    "podfleet_watcher_lease_held",
    "1 while this process holds the cluster's singleton watcher lease (one per cluster).",
    ["cluster"], multiprocess_mode="livesum")
WATCHER_TAKEOVERS = Counter(
    "podfleet_watcher_takeovers_total", "Times a watcher acquired its cluster's lease.",
    ["cluster"])
CLUSTER_REACHABLE = Gauge(
    "podfleet_cluster_reachable",
    "0 while a worker process finds the cluster's API server unreachable (its watcher, or "
    "a launcher's creates, get no answer), 1 otherwise; the lowest of the live processes.",
    ["cluster"], multiprocess_mode="livemin")
WATCHER_LAST_EVENT = Gauge(
    "podfleet_watcher_last_event_timestamp_seconds",
    "Unix time the watcher last received anything (event or bookmark) from the API.",
    multiprocess_mode="max")
TASK_EVENTS_PUBLISHED = Counter(
    "podfleet_task_events_published_total",
    "Task events written to executors' streams, by source and state.",
    ["source", "state"])
PODS_DELETED = Counter(
    "podfleet_pods_deleted_total",
    "Finished pods deleted by policy: deleted, or already gone (404).", ["result"])
POD_LOGS_ARCHIVED = Counter(
    "podfleet_pod_logs_archived_total",
    "Final pod logs the watcher archived before deleting their pods, by result: archived; "
    "no_log (the container never started); pod_gone (deleted by someone else first); "
    "retried (an attempt failed, tried again); failed (gave up: the pod was deleted "
    "without its log).", ["result"])

# --- clocks and consumers ----------------------------------------------------------------
CLOCK_SKEW = Gauge(
    "podfleet_clock_skew_seconds",
    "How far this host's clock is ahead of the reference clock deadlines and heartbeats are "
    "judged on (negative: behind), by reference: redis (TIME) or database (now()).",
    ["reference"], multiprocess_mode="livemax")
QUEUE_CONSUMERS = Gauge(
    "podfleet_queue_consumers",
    "Live worker processes consuming each launch queue (dramatiq queue), as the executor "
    "last saw them; 0 with launches waiting means nobody will ever start them.",
    ["queue"], multiprocess_mode="livemax")
QUEUE_WAITING_LAUNCHES = Gauge(
    "podfleet_queue_waiting_launches",
    "Launch messages waiting in each launch queue (dramatiq queue), as the executor last saw "
    "them.", ["queue"], multiprocess_mode="livemax")

# --- executor ----------------------------------------------------------------------------
EXECUTOR_OPEN_SLOTS = Gauge(
    "podfleet_executor_open_slots", "Tasks this executor may still start (parallelism left).",
    ["executor"], multiprocess_mode="livemax")
EXECUTOR_QUEUED_TASKS = Gauge(
    "podfleet_executor_queued_tasks", "Tasks queued (submitted, not yet running).",
    ["executor"], multiprocess_mode="livemax")
EXECUTOR_RUNNING_TASKS = Gauge(
    "podfleet_executor_running_tasks", "Tasks launched or running.",
    ["executor"], multiprocess_mode="livemax")
TASKS_SUBMITTED = Counter(
    "podfleet_tasks_submitted_total", "Tasks accepted by submit.", ["executor"])
EVENTS_APPLIED = Counter(
    "podfleet_executor_events_total",
    "Task events read by sync: applied, or ignored (stale launch, replay, terminal).",
    ["result"])
POD_DISRUPTIONS = Counter(
    "podfleet_pod_disruptions_total",
    "Task pods disrupted (a DisruptionTarget condition), by the condition's reason, counted "
    "once each when the executor applies it.", ["reason"])
TASK_RELAUNCHES = Counter(
    "podfleet_task_relaunches_total",
    "Task tries launched again under a new launch id without spending a retry, by cause.",
    ["cause"])
RESYNC_REPAIRS = Counter(
    "podfleet_resync_repairs_total",
    "Differences between a task and its pod that the periodic resync repaired: each is an "
    "event lost somewhere (a bug found), by kind.", ["kind"])
RESYNC_DURATION = Histogram(
    "podfleet_resync_duration_seconds",
    "Time one resync pass spent listing, comparing and repairing (not the period it is "
    "spread over).", buckets=LATENCY_BUCKETS)

# --- dramatiq (recorded by monitoring.dramatiq_metrics.DramatiqMetrics) ------------------
# Same names and labels as dramatiq's bundled Prometheus middleware, so dashboards written for
# it keep working; the duration is in seconds (base units) instead of its milliseconds.
DRAMATIQ_MESSAGES = Counter(
    "dramatiq_messages_total", "Messages processed (or skipped) by a worker.",
    ["queue_name", "actor_name"])
DRAMATIQ_MESSAGE_ERRORS = Counter(
    "dramatiq_message_errors_total", "Messages whose actor raised.",
    ["queue_name", "actor_name"])
DRAMATIQ_MESSAGE_RETRIES = Counter(
    "dramatiq_message_retries_total", "Messages re-enqueued for a retry.",
    ["queue_name", "actor_name"])
DRAMATIQ_MESSAGE_REJECTS = Counter(
    "dramatiq_message_rejects_total", "Messages dead-lettered (nacked).",
    ["queue_name", "actor_name"])
DRAMATIQ_MESSAGES_INPROGRESS = Gauge(
    "dramatiq_messages_inprogress", "Messages being processed now.",
    ["queue_name", "actor_name"], multiprocess_mode="livesum")
DRAMATIQ_DELAYED_MESSAGES_INPROGRESS = Gauge(
    "dramatiq_delayed_messages_inprogress",
    "Delayed messages (retries waiting for their eta) held in worker memory.",
    ["queue_name", "actor_name"], multiprocess_mode="livesum")
DRAMATIQ_MESSAGE_DURATION = Histogram(
    "dramatiq_message_duration_seconds", "Time an actor spent on one message.",
    ["queue_name", "actor_name"], buckets=LATENCY_BUCKETS)

# --- broker (collected from Redis at scrape time) -----------------------------------------
# podfleet_broker_queue_depth{queue} and podfleet_broker_dead_letters{queue} are produced by
# monitoring.broker_collector.BrokerCollector when a process registers it (the worker
# endpoint does, so every worker host reports the same values: aggregate with max, not sum).
BROKER_QUEUE_DEPTH_NAME = "podfleet_broker_queue_depth"
BROKER_DEAD_LETTERS_NAME = "podfleet_broker_dead_letters"
# Also produced there: messages fetched by a worker but not acked yet, retries waiting for their
# eta, and whether the last scrape could read Redis at all.
BROKER_IN_FLIGHT_NAME = "podfleet_broker_in_flight_messages"
BROKER_DELAYED_NAME = "podfleet_broker_delayed_messages"
BROKER_UP_NAME = "podfleet_broker_up"
# Admission's fleet-wide state, produced by monitoring.admission_collector.AdmissionCollector
# from Redis at scrape time (every worker host reports the same values: max, not sum).
PENDING_PODS_NAME = "podfleet_pending_pods"
PENDING_CAP_NAME = "podfleet_pending_cap"
QUEUE_WEIGHT_SHARE_NAME = "podfleet_queue_weight_share"
QUEUE_PENDING_PODS_NAME = "podfleet_queue_pending_pods"


# --- series that exist from the start ----------------------------------------------------
# A labelled counter's series appears at its first increment, and rate()/increase() cannot
# see that first increment: the first 429, the first dead letter, the first OOM-killed task
# would never fire an alert. Every closed set of label values is therefore a StrEnum here,
# recorded by its members, and each of its series is created at 0 when a process starts
# (not at import: a worker's multiprocess directory must be set up first).


class Budget(StrEnum):
    """``budget`` of ``podfleet_admission_waits_total``: which budget refused a permit."""

    POOL = "pool"
    PENDING = "pending"
    PENDING_SHARE = "pending_share"
    SHARE = "share"
    CEILING = "ceiling"
    RATE = "rate"


class PodCreateOutcome(StrEnum):
    """``outcome`` of ``podfleet_pods_created_total``."""

    CREATED = "created"
    ALREADY_EXISTS = "already_exists"
    INVALID = "invalid"
    FAILED = "failed"
    EXPIRED = "expired"
    REPLAYED = "replayed"


class LaunchRetryReason(StrEnum):
    """``reason`` of ``podfleet_launch_retries_total``: no answer, a quota, or the HTTP
    status of a retryable answer (any other 5xx counts as ``5xx``)."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    QUOTA = "quota"
    REQUEST_TIMEOUT = "408"
    CONFLICT = "409"
    TOO_MANY_REQUESTS = "429"
    INTERNAL_ERROR = "500"
    BAD_GATEWAY = "502"
    SERVICE_UNAVAILABLE = "503"
    GATEWAY_TIMEOUT = "504"
    OTHER_SERVER_ERROR = "5xx"


class MessageRejectReason(StrEnum):
    """``reason`` of ``podfleet_messages_rejected_total``."""

    SIGNATURE = "signature"
    MALFORMED = "malformed"
    UNDECODABLE = "undecodable"


class WatchEventType(StrEnum):
    """``type`` of ``podfleet_watch_events_total``: the watch event types the API sends."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


class WatchRestartReason(StrEnum):
    """``reason`` of ``podfleet_watch_restarts_total``."""

    EXPIRED = "expired"  # 410 Gone: relist
    TIMEOUT = "timeout"
    ERROR = "error"
    CLOSED = "closed"    # the server ended the stream
    REDIS_REFUSED = "redis_refused"  # a publish was refused (OOM, MISCONF, READONLY): reload
    RESYNC = "resync"    # the periodic relist (PODFLEET_RESYNC_SECONDS)


class PodDeleteResult(StrEnum):
    """``result`` of ``podfleet_pods_deleted_total``."""

    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    FAILED = "failed"


class LogArchiveResult(StrEnum):
    """``result`` of ``podfleet_pod_logs_archived_total``."""

    ARCHIVED = "archived"
    NO_LOG = "no_log"
    POD_GONE = "pod_gone"
    RETRIED = "retried"
    FAILED = "failed"


class ResyncRepair(StrEnum):
    """``kind`` of ``podfleet_resync_repairs_total``."""

    POD_FINISHED = "pod_finished"        # the pod ended, its task had not: verdict applied
    POD_VANISHED = "pod_vanished"        # the pod is gone: requeued, or failed if it ran
    POD_NOT_DELETED = "pod_not_deleted"  # finished, its task done, the policy's delete lost


class ClockReference(StrEnum):
    """``reference`` of ``podfleet_clock_skew_seconds``."""

    REDIS = "redis"
    DATABASE = "database"


class KubeVerb(StrEnum):
    """``verb`` of ``podfleet_kube_requests_total`` and its duration."""

    CREATE = "create"
    GET = "get"
    LIST = "list"
    WATCH = "watch"
    DELETE = "delete"
    DELETE_COLLECTION = "deletecollection"
    PATCH = "patch"


class DisruptionReason(StrEnum):
    """``reason`` of ``podfleet_pod_disruptions_total``: the reasons Kubernetes gives a pod's
    ``DisruptionTarget`` condition, and OTHER for any other (DeletionByPodGC, newer ones)."""

    PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"
    EVICTION_BY_EVICTION_API = "EvictionByEvictionAPI"
    DELETION_BY_TAINT_MANAGER = "DeletionByTaintManager"
    TERMINATION_BY_KUBELET = "TerminationByKubelet"
    OTHER = "Other"

    @classmethod
    def of(cls, reason: str) -> DisruptionReason:
        """The label of a condition's ``reason``; an open set folds into OTHER."""
        try:
            return cls(reason)
        except ValueError:
            return cls.OTHER


class RelaunchCause(StrEnum):
    """``cause`` of ``podfleet_task_relaunches_total``."""

    DISRUPTION = "disruption"                       # the pod was preempted, evicted, drained…
    DELETED_BEFORE_START = "deleted_before_start"   # the pod went away before it ran
    QUEUED_TIMEOUT = "queued_timeout"               # sent, but no pod within the timeout
    POD_LOST = "pod_lost"                           # no pod found after Redis lost its state


def preinitialise(metric: Counter | Histogram, **values: Iterable[str]) -> None:
    """Create ``metric``'s series for every combination of the given label values, at 0."""
    names = list(values)
    for combination in itertools.product(*(tuple(v) for v in values.values())):
        metric.labels(**dict(zip(names, combination, strict=True)))


def preinitialise_worker_metrics(namespaces: Iterable[str],
                                 clusters: Iterable[str] = ("default",)) -> None:
    """The launcher's and watcher's labelled series, at 0, for these namespaces and
    clusters (each cluster reachable until a process finds otherwise)."""
    namespaces = tuple(namespaces)
    clusters = tuple(clusters)
    preinitialise(PODS_CREATED, cluster=clusters, namespace=namespaces,
                  outcome=PodCreateOutcome)
    preinitialise(WATCHER_TAKEOVERS, cluster=clusters)
    for cluster in clusters:
        WATCHER_LEASE_HELD.labels(cluster=cluster).set(0)
        CLUSTER_REACHABLE.labels(cluster=cluster).set(1)
    preinitialise(QUOTA_WAITS, namespace=namespaces)
    for namespace in namespaces:
        QUOTA_PARKED.labels(namespace=namespace).set(0)
    preinitialise(LAUNCH_RETRIES, reason=LaunchRetryReason)
    preinitialise(MESSAGES_REJECTED, reason=MessageRejectReason)
    preinitialise(WATCH_EVENTS, type=WatchEventType)
    preinitialise(WATCH_RESTARTS, reason=WatchRestartReason)
    preinitialise(PODS_DELETED, result=PodDeleteResult)
    preinitialise(POD_LOGS_ARCHIVED, result=LogArchiveResult)
    preinitialise(TASK_EVENTS_PUBLISHED, source=EventSource, state=TaskState)
    preinitialise(KUBE_REQUEST_DURATION, verb=KubeVerb)


def observe_kube_request(verb: str, code: int, seconds: float) -> None:
    """A :class:`podfleet.kube.client.KubeClient` observer: count and time the request
    (``verb``: a :class:`KubeVerb` value) to the ``default`` cluster."""
    KUBE_REQUESTS.labels(cluster="default", verb=verb, code=str(code)).inc()
    KUBE_REQUEST_DURATION.labels(verb=verb).observe(seconds)


def kube_request_observer(cluster: str) -> Callable[[str, int, float], None]:
    """:func:`observe_kube_request` for the client of ``cluster``."""
    def observe(verb: str, code: int, seconds: float) -> None:
        KUBE_REQUESTS.labels(cluster=cluster, verb=verb, code=str(code)).inc()
        KUBE_REQUEST_DURATION.labels(verb=verb).observe(seconds)
    return observe
