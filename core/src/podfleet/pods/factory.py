"""Building the pod JSON of one launch request.

Layers, each merged onto the one before (:mod:`podfleet.pods.merge`), as Airflow's
``PodGenerator.construct_pod`` layers template → dynamic pod → ``pod_override``:

1. the pod template file (``PODFLEET_POD_TEMPLATE_FILE``), read once per process;
2. podfleet's defaults: the worker image and pull policy where the template names none, the
   task queue's PriorityClass (``PODFLEET_QUEUE_PRIORITY_CLASSES``) where it names none, and
   the task's command as the task container's ``args`` (Airflow does the same, so an image's
   ENTRYPOINT still runs);
3. the task's own fields from ``executor_config`` (image, resources, env, secrets, …);
4. the task's ``pod_override``;
5. podfleet's identity, which nothing above may change: the deterministic name, the namespace,
   podfleet's labels and annotations (winning over a user's on podfleet's own keys),
   ``restartPolicy: Never`` and the ``PODFLEET_*`` variables naming the task.

The result must then pass the pod policy (:mod:`podfleet.pods.policy`: allowed namespace,
service account, Pod Security Standards level) or the build raises ``PodRefused``.

The result is plain JSON ready for :meth:`podfleet.kube.client.KubeClient.create_pod`; building
one costs tens of microseconds, not the milliseconds of model objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from podfleet.contracts.messages import LaunchRequest
from podfleet.contracts.naming import QUEUE_ANNOTATION, pod_name, task_annotations, task_labels
from podfleet.contracts.queues import DEFAULT_QUEUE, route_for
from podfleet.pods.config import InvalidExecutorConfig, apply_task_fields
from podfleet.pods.merge import BASE_CONTAINER_NAME, merge_keyed, reconcile_pods
from podfleet.pods.policy import PodPolicy, pod_service_account
from podfleet.settings import Settings, SettingsError

_EMPTY_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {},
    "spec": {"containers": [{"name": BASE_CONTAINER_NAME}]},
}


def load_pod_template(path: Path | None) -> bytes:
    """The template file as JSON bytes (parsed again per pod: cheaper than a deep copy).

    Raises SettingsError naming PODFLEET_POD_TEMPLATE_FILE when the file is not a pod.
    """
    if path is None:
        return orjson.dumps(_EMPTY_POD)
    where = f"PODFLEET_POD_TEMPLATE_FILE={str(path)!r}"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{where}: cannot read a YAML pod from it: {exc}") from None
    if not isinstance(data, dict) or data.get("kind", "Pod") != "Pod":
        raise SettingsError(f"{where}: must hold one object of kind Pod")
    spec = data.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list) \
            or not spec["containers"] or not all(isinstance(c, dict)
                                                 for c in spec["containers"]):
        raise SettingsError(f"{where}: spec.containers must list at least one container")
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Pod")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    if not spec["containers"][0].get("name"):
        spec["containers"][0]["name"] = BASE_CONTAINER_NAME
    try:
        return orjson.dumps(data)
    except TypeError as exc:
        raise SettingsError(f"{where}: not representable as JSON: {exc}") from None


def task_environment(request: LaunchRequest, name: str) -> list[dict[str, str]]:
    """``PODFLEET_*`` variables that tell the task which try of which task it is."""
    key = request.key
    return [
        {"name": "PODFLEET_DAG_ID", "value": key.dag_id},
        {"name": "PODFLEET_TASK_ID", "value": key.task_id},
        {"name": "PODFLEET_RUN_ID", "value": key.run_id},
        {"name": "PODFLEET_MAP_INDEX", "value": str(key.map_index)},
        {"name": "PODFLEET_TRY_NUMBER", "value": str(key.try_number)},
        {"name": "PODFLEET_LAUNCH_ID", "value": request.launch_id},
        {"name": "PODFLEET_EXECUTOR_ID", "value": request.executor_id},
        {"name": "PODFLEET_POD_NAME", "value": name},
        # Airflow's task runner looks for this to know it runs in an executor pod.
        {"name": "AIRFLOW_IS_K8S_EXECUTOR_POD", "value": "True"},
    ]


def _env_name(item: dict[str, Any]) -> Any:
    return item.get("name")


class PodFactory:
    """Builds pods for launch requests; one per process, safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        self._template = load_pod_template(settings.pods.template_file)
        self._image = settings.pods.image
        self._pull_policy = settings.pods.pull_policy
        self._settings = settings
        self.policy = PodPolicy(settings, pod_service_account(orjson.loads(self._template)))
        self._queue_priority_classes = settings.pods.queue_priority_classes

    def build(self, request: LaunchRequest) -> dict[str, Any]:
        """The pod JSON for ``request``; raises InvalidExecutorConfig for a config whose
        parts cannot be merged, and its subclass PodRefused for a pod the policy forbids
        (the launcher fails that task without calling the API)."""
        pod: dict[str, Any] = orjson.loads(self._template)
        spec = pod["spec"]
        task = spec["containers"][0]
        # Layer 2: podfleet's defaults.
        task.setdefault("image", self._image)
        task.setdefault("imagePullPolicy", self._pull_policy)
        task["args"] = list(request.command)
        queue_class = self._queue_priority_classes.get(request.queue or DEFAULT_QUEUE)
        if queue_class:
            spec.setdefault("priorityClassName", queue_class)
        # Layers 3 and 4: the task's fields and its pod_override (a fresh copy: the merge
        # shares structure with its inputs).
        config = orjson.loads(orjson.dumps(request.executor_config or {}))
        try:
            apply_task_fields(pod, config)
            override = config.get("pod_override")
            if override:
                pod = reconcile_pods(pod, override)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise InvalidExecutorConfig(f"executor_config cannot be merged into the pod: "
                                        f"{type(exc).__name__}: {exc}") from None
        # Layer 5: identity.
        name = pod_name(request.key, request.launch_id)
        meta = pod.setdefault("metadata", {})
        meta.pop("generateName", None)
        meta.pop("resourceVersion", None)
        meta.pop("uid", None)
        meta["name"] = name
        meta["namespace"] = request.namespace
        meta["labels"] = {**(meta.get("labels") or {}),
                          **task_labels(request.key, request.launch_id, request.executor_id)}
        meta["annotations"] = {**(meta.get("annotations") or {}), **task_annotations(
            request.key, request.launch_id, request.executor_id, request.queued_at),
            QUEUE_ANNOTATION: route_for(self._settings, request.queue).name}
        spec = pod["spec"]
        spec["restartPolicy"] = "Never"
        pod.pop("status", None)
        containers = spec["containers"]
        containers[0] = dict(containers[0])
        containers[0]["env"] = merge_keyed(containers[0].get("env"),
                                           task_environment(request, name), _env_name)
        self.policy.check(pod)
        return pod


def base_container_name(pod: dict[str, Any]) -> str:
    """The name of the task's container (the first) in a pod built here: the container whose
    log is the task's (a sidecar or a mesh proxy may sit beside it)."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name") or BASE_CONTAINER_NAME)
