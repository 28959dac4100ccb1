"""A task's ``executor_config`` as Airflow users write it, settled scheduler-side.

Accepted exactly as the KubernetesExecutor accepts it: ``pod_override`` (a ``V1Pod``) and
``pod_template_file`` (a YAML pod, read here, on the scheduler, as upstream reads it), beside
podfleet's own per-task fields. The legacy ``{"KubernetesExecutor": {...}}`` dict is refused
with the message podfleet's validation gives. The result is one podfleet executor_config whose
``pod_override`` is template ⊕ override ⊕ Airflow's labels, passed through the
``pod_mutation_hook`` of ``airflow_local_settings`` when one is defined.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from podfleet.kube.models import is_api_model, json_to_model, model_to_json
from podfleet.pods import InvalidExecutorConfig
from podfleet.pods.merge import reconcile_pods

MutationHook = Callable[[Any], Any]


class PodTemplates:
    """Reads ``pod_template_file`` paths, each once per modification (tasks share them)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def load(self, path: str) -> dict[str, Any]:
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            raise InvalidExecutorConfig(
                f"executor_config.pod_template_file: cannot read {path!r}: {exc.strerror}"
            ) from None
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            pod = yaml.safe_load(Path(path).read_text())
        except OSError as exc:  # a directory, unreadable, gone since the stat
            raise InvalidExecutorConfig(
                f"executor_config.pod_template_file: cannot read {path!r}: {exc.strerror}"
            ) from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidExecutorConfig(
                f"executor_config.pod_template_file: {path!r} is not YAML: {exc}") from None
        if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod" or "spec" not in pod:
            raise InvalidExecutorConfig(
                f"executor_config.pod_template_file: {path!r} must hold one Pod "
                "(kind: Pod, with a spec)")
        self._cache[path] = (mtime, pod)
        return pod


def resolve_executor_config(config: Any, *, labels: dict[str, str],
                            annotations: dict[str, str], templates: PodTemplates,
                            mutation_hook: MutationHook | None) -> dict[str, Any]:
    """podfleet's executor_config for one Airflow task; raises InvalidExecutorConfig.

    Merge order as upstream's: the task's template file, then Airflow's identity labels,
    then the task's ``pod_override`` (the user's labels win over nothing of podfleet's own:
    podfleet adds its labels last, at pod build time).
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidExecutorConfig(
            f"executor_config must be a dict such as {{'pod_override': V1Pod(...)}}, "
            f"not {type(config).__name__}")
    result = dict(config)
    template_path = result.pop("pod_template_file", None)
    if template_path is not None and (not isinstance(template_path, str) or not template_path):
        raise InvalidExecutorConfig("executor_config.pod_template_file must be a path")
    if "KubernetesExecutor" in result:
        return result  # podfleet's validation names the problem
    override = result.get("pod_override")
    if override is not None and is_api_model(override):
        override = model_to_json(override)
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod"}
    if template_path:
        base = templates.load(template_path)
    pod = reconcile_pods(base, {"metadata": {"labels": labels, "annotations": annotations}})
    if isinstance(override, dict):
        pod = reconcile_pods(pod, override)
    elif override is not None:
        result["pod_override"] = override  # podfleet's validation names the problem
        return result
    if mutation_hook is not None:
        model = json_to_model(pod, "V1Pod")
        mutation_hook(model)
        pod = model_to_json(model)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    result["pod_override"] = pod
    return result
