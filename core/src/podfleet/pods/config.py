"""A task's ``executor_config``: its fields, each checked at submit and applied at launch.

Airflow users pass ``executor_config={"pod_override": V1Pod(...)}``; podfleet accepts that, a
plain dict in the API's JSON form in its place, and a few per-task fields of its own (image,
resources, env, …). Everything is checked against Kubernetes' own rules here, so a bad config
fails the submit with a message naming the field rather than a pod create with a 422 later,
and the result is normalised to plain JSON (models converted once) that travels in the launch
message and is stored in the DB as is. The launcher applies the same fields to the pod
(:func:`apply_task_fields`, layer 3 of :mod:`podfleet.pods.factory`).

Each field is one row of :data:`EXECUTOR_CONFIG_FIELDS`: what it accepts, how it is checked,
what it changes in the pod; ``docs/executor-config.md`` is generated from it
(``python -m podfleet.pods``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, cast

import orjson

from podfleet.contracts.clusters import (
    Placement,
    PlacementError,
    cluster_name_problem,
    selector_problem,
)
from podfleet.kube.models import is_api_model, model_to_json
from podfleet.kube.rules import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_key_errors,
    label_value_errors,
    parse_quantity,
)
from podfleet.pods.merge import merge_container, merge_keyed

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# Kubernetes' limit on the total size of a pod's annotations.
ANNOTATIONS_MAX_BYTES = 256 * 1024
# Airflow's legacy resource shorthands, mapped to (section, resource name).
_RESOURCE_SHORTHANDS = {
    "request_cpu": ("requests", "cpu"),
    "request_memory": ("requests", "memory"),
    "request_ephemeral_storage": ("requests", "ephemeral-storage"),
    "limit_cpu": ("limits", "cpu"),
    "limit_memory": ("limits", "memory"),
    "limit_ephemeral_storage": ("limits", "ephemeral-storage"),
    "limit_gpu": ("limits", "nvidia.com/gpu"),
}
_PREFIXED_RESOURCE_HINT = "cpu, memory, ephemeral-storage, hugepages-*, or a prefixed name " \
                          "such as nvidia.com/gpu"


class InvalidExecutorConfig(ValueError):
    """An executor_config podfleet cannot turn into a pod; the message names the field."""


def _fail(field: str, problem: str) -> InvalidExecutorConfig:
    return InvalidExecutorConfig(f"executor_config.{field}: {problem}")


def _as_json(value: Any) -> Any:
    """Models (anywhere inside lists/dicts) converted to API JSON; plain values unchanged."""
    if is_api_model(value):
        return model_to_json(value)
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _require_json(field: str, value: Any) -> Any:
    """``value`` as JSON, or a clear error when it holds something JSON cannot carry."""
    converted = _as_json(value)
    try:
        return orjson.loads(orjson.dumps(converted))
    except TypeError as exc:
        raise _fail(field, f"must be JSON-serialisable ({exc})") from None


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, "must be a non-empty string")
    return value


def _object(field: str, value: Any) -> dict[str, Any]:
    value = _require_json(field, value)
    if not isinstance(value, dict):
        raise _fail(field, f"must be an object, not {type(value).__name__}")
    return value


def _list_of_objects(field: str, value: Any) -> list[dict[str, Any]]:
    value = _require_json(field, value)
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, not {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _fail(f"{field}[{i}]", f"must be an object, not {type(item).__name__}")
    return value


def _string_map(field: str, value: Any, *, key_check: Callable[[str], list[str]],
                value_check: Callable[[str], list[str]] | None) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail(field, f"must be an object of strings, not {type(value).__name__}")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _fail(field, f"key {key!r} must be a string")
        errors = key_check(key)
        if errors:
            raise _fail(f"{field}[{key!r}]", f"invalid key: {errors[0]}")
        if not isinstance(item, str):
            raise _fail(f"{field}[{key!r}]", f"value must be a string, not {type(item).__name__}")
        if value_check is not None:
            errors = value_check(item)
            if errors:
                raise _fail(f"{field}[{key!r}]", f"invalid value {item!r}: {errors[0]}")
        result[key] = item
    return result


def _env(field: str, value: Any) -> list[dict[str, Any]]:
    """``{"NAME": "value"}`` or a list of EnvVar objects/dicts → a list of EnvVar dicts."""
    if isinstance(value, Mapping) and not is_api_model(value):
        items: list[dict[str, Any]] = []
        for name, val in value.items():
            if not isinstance(name, str) or not isinstance(val, str):
                raise _fail(f"{field}[{name!r}]", "names and values must be strings")
            items.append({"name": name, "value": val})
    else:
        items = _list_of_objects(field, value)
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str) or not name or "=" in name:
            raise _fail(f"{field}[{i}].name", "must be a non-empty string without '='")
        if "value" in item and item["value"] is not None and not isinstance(item["value"], str):
            raise _fail(f"{field}[{i}].value", "must be a string")
        if name in seen:
            raise _fail(f"{field}[{i}].name", f"duplicate variable {name!r}")
        seen.add(name)
    return items


def _named(field: str, items: list[dict[str, Any]], key: str = "name") -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get(key)
        if not isinstance(name, str) or not name:
            raise _fail(f"{field}[{i}].{key}", "must be a non-empty string")
        if key == "name":
            errors = dns1123_label_errors(name)
            if errors:
                raise _fail(f"{field}[{i}].name", f"{name!r}: {errors[0]}")
        if name in seen:
            raise _fail(f"{field}[{i}].{key}", f"duplicate {name!r}")
        seen.add(name)


def _resources(field: str, value: Any) -> dict[str, dict[str, str]]:
    value = _object(field, value)
    result: dict[str, dict[str, str]] = {}
    parsed: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}
    for key, item in value.items():
        if key in _RESOURCE_SHORTHANDS:
            section, name = _RESOURCE_SHORTHANDS[key]
            entries = {name: item}
        elif key in ("requests", "limits"):
            section = key
            if not isinstance(item, dict):
                raise _fail(f"{field}.{key}", "must be an object of quantities")
            entries = item
        else:
            raise _fail(field, f"unknown key {key!r} (expected requests, limits or one of "
                               f"{', '.join(sorted(_RESOURCE_SHORTHANDS))})")
        for name, quantity in entries.items():
            if quantity is None:
                continue
            if not isinstance(name, str) or ("/" not in name and name not in (
                    "cpu", "memory", "ephemeral-storage") and not name.startswith("hugepages-")):
                raise _fail(f"{field}.{section}", f"unknown resource {name!r} "
                                                  f"(use {_PREFIXED_RESOURCE_HINT})")
            try:
                amount = parse_quantity(quantity)
            except ValueError as exc:
                raise _fail(f"{field}.{section}[{name!r}]", f"{quantity!r}: {exc}") from None
            if amount < 0:
                raise _fail(f"{field}.{section}[{name!r}]", "must be greater than or equal to 0")
            parsed[section][name] = amount
            result.setdefault(section, {})[name] = str(quantity)
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            raise _fail(f"{field}.requests[{name!r}]",
                        f"must be less than or equal to {name} limit of "
                        f"{result['limits'][name]}")
    return result


def _secrets(field: str, value: Any) -> list[dict[str, str]]:
    """Airflow-style secrets: deploy_type env (one key, or all keys via envFrom) or volume."""
    if not isinstance(value, list | tuple):
        raise _fail(field, "must be a list")
    result: list[dict[str, str]] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            # Duck-typed airflow.providers.cncf.kubernetes.secret.Secret.
            item = {k: getattr(item, k, None)
                    for k in ("deploy_type", "deploy_target", "secret", "key")}
        deploy_type = item.get("deploy_type")
        secret = item.get("secret")
        target = item.get("deploy_target")
        key = item.get("key")
        where = f"{field}[{i}]"
        if deploy_type not in ("env", "volume"):
            raise _fail(f"{where}.deploy_type", "must be 'env' or 'volume'")
        if not isinstance(secret, str) or dns1123_subdomain_errors(secret):
            raise _fail(f"{where}.secret", f"must be a valid secret name, got {secret!r}")
        if key is not None and (not isinstance(key, str) or not key):
            raise _fail(f"{where}.key", "must be a non-empty string or absent")
        if deploy_type == "volume" and (not isinstance(target, str)
                                        or not target.startswith("/")):
            raise _fail(f"{where}.deploy_target", "a volume secret needs an absolute mount path")
        if deploy_type == "env" and key is not None and (
                not isinstance(target, str) or not target):
            raise _fail(f"{where}.deploy_target",
                        "an env secret with a key needs the variable name")
        entry = {"deploy_type": deploy_type, "secret": secret}
        if target is not None:
            entry["deploy_target"] = str(target)
        if key is not None:
            entry["key"] = key
        result.append(entry)
    return result


# The fields of a V1Pod's JSON form; anything else is not a pod (e.g. a bare V1Container).
_POD_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


def _pod_override(value: Any) -> dict[str, Any]:
    if is_api_model(value) and type(value).__name__ != "V1Pod":
        raise _fail("pod_override", f"must be a V1Pod, not a {type(value).__name__} "
                                    "(wrap containers as V1Pod(spec=V1PodSpec(containers=[...])))")
    pod = _object("pod_override", value)
    strange = sorted(set(pod) - _POD_FIELDS)
    if strange:
        raise _fail("pod_override", f"is not a pod: unknown field(s) {', '.join(strange)} "
                                    "(a pod has apiVersion, kind, metadata, spec)")
    if pod.get("kind") not in (None, "Pod"):
        raise _fail("pod_override.kind", f"must be 'Pod', not {pod['kind']!r}")
    for key in ("metadata", "spec"):
        if key in pod and pod[key] is not None and not isinstance(pod[key], dict):
            raise _fail(f"pod_override.{key}", "must be an object")
    meta = pod.get("metadata") or {}
    if "labels" in meta and meta["labels"] is not None:
        _string_map("pod_override.metadata.labels", meta["labels"], key_check=label_key_errors,
                    value_check=label_value_errors)
    if "annotations" in meta and meta["annotations"] is not None:
        _string_map("pod_override.metadata.annotations", meta["annotations"],
                    key_check=label_key_errors, value_check=None)
    if meta.get("namespace") is not None:
        _checked_name("pod_override.metadata.namespace", meta["namespace"], dns1123_label_errors)
    spec = pod.get("spec") or {}
    for list_field in ("containers", "initContainers", "volumes", "tolerations"):
        if spec.get(list_field) is not None:
            _list_of_objects(f"pod_override.spec.{list_field}", spec[list_field])
    # Init containers are checked like containers: the API refuses their bad quantities too.
    for kind in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(kind) or []):
            where = f"pod_override.spec.{kind}[{i}]"
            name = container.get("name")
            if name is not None and (not isinstance(name, str) or dns1123_label_errors(name)):
                raise _fail(f"{where}.name", f"{name!r} is not a valid container name")
            if container.get("resources") is not None:
                _resources(f"{where}.resources", container["resources"])
            if container.get("env") is not None:
                _env(f"{where}.env", container["env"])
    if spec.get("volumes"):
        _named("pod_override.spec.volumes", spec["volumes"])
    return pod


@dataclass
class TaskLayer:
    """Layer 3 of a pod being built: the pod, and the env vars, volumes and mounts the task's
    fields add (merged into the pod once, after every field, so each is merged by name)."""

    pod: dict[str, Any]
    env: list[dict[str, Any]] = dc_field(default_factory=list)
    env_from: list[dict[str, Any]] = dc_field(default_factory=list)
    volumes: list[dict[str, Any]] = dc_field(default_factory=list)
    mounts: list[dict[str, Any]] = dc_field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.pod.setdefault("metadata", {}))

    @property
    def spec(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.pod.setdefault("spec", {}))

    @property
    def task(self) -> dict[str, Any]:
        """The task's container: the first."""
        return cast(dict[str, Any], self.spec["containers"][0])


@dataclass(frozen=True)
class ConfigField:
    """One field of ``executor_config``: the one place that says what it accepts, checks and
    normalises it (at submit), and applies it to the pod (in the launcher)."""

    name: str
    accepts: str  # for the docs: what a user may pass
    applied: str  # for the docs: what it changes in the pod
    normalise: Callable[[str, Any], Any]
    # None: not applied in layer 3 (``applied`` says where it takes effect).
    apply: Callable[[TaskLayer, Any], None] | None


def _set_in_container(key: str) -> Callable[[TaskLayer, Any], None]:
    def apply(layer: TaskLayer, value: Any) -> None:
        layer.task[key] = value
    return apply


def _set_in_spec(key: str) -> Callable[[TaskLayer, Any], None]:
    def apply(layer: TaskLayer, value: Any) -> None:
        layer.spec[key] = value
    return apply


def _merge_map(where: Callable[[TaskLayer], dict[str, Any]],
               key: str) -> Callable[[TaskLayer, Any], None]:
    def apply(layer: TaskLayer, value: Any) -> None:
        target = where(layer)
        target[key] = {**(target.get(key) or {}), **value}
    return apply


def _apply_resources(layer: TaskLayer, value: dict[str, dict[str, str]]) -> None:
    resources = dict(layer.task.get("resources") or {})
    for section, values in value.items():
        resources[section] = {**(resources.get(section) or {}), **values}
    layer.task["resources"] = resources


def _apply_tolerations(layer: TaskLayer, value: list[dict[str, Any]]) -> None:
    existing = list(layer.spec.get("tolerations") or [])
    layer.spec["tolerations"] = existing + [t for t in value if t not in existing]


def _apply_secrets(layer: TaskLayer, value: list[dict[str, str]]) -> None:
    """Env secrets become env vars (one key) or envFrom (every key); volume secrets a
    volume named after the secret and path, mounted read-only."""
    for secret in value:
        name = secret["secret"]
        if secret["deploy_type"] == "env":
            if "key" in secret:
                layer.env.append({"name": secret["deploy_target"], "valueFrom": {
                    "secretKeyRef": {"name": name, "key": secret["key"]}}})
            else:
                layer.env_from.append({"secretRef": {"name": name}})
            continue
        path = secret["deploy_target"]
        digest = hashlib.blake2b(f"{name}\0{path}".encode(), digest_size=6).hexdigest()
        volume_name = f"secret-{digest}"
        source: dict[str, Any] = {"secretName": name}
        if "key" in secret:
            source["items"] = [{"key": secret["key"], "path": secret["key"]}]
        layer.volumes.append({"name": volume_name, "secret": source})
        layer.mounts.append({"name": volume_name, "mountPath": path, "readOnly": True})


def _label_map(field: str, value: Any) -> dict[str, str]:
    return _string_map(field, value, key_check=label_key_errors, value_check=label_value_errors)


def _meta(layer: TaskLayer) -> dict[str, Any]:
    return layer.meta


def _spec(layer: TaskLayer) -> dict[str, Any]:
    return layer.spec


#: Every ``executor_config`` field; the order is the order of the normalised dict and the
#: order the fields are applied in.
EXECUTOR_CONFIG_FIELDS: tuple[ConfigField, ...] = (
    ConfigField(
        "pod_override",
        "a `V1Pod`, or a dict in the API's JSON form (`apiVersion`, `kind`, `metadata`, "
        "`spec`); its labels, annotations, namespace, containers' names, resources and env, "
        "and volume names are checked by Kubernetes' rules",
        "merged over the pod after every other field, as Airflow merges: containers by name "
        "(the first is the task's), env vars, volumes and mounts by name",
        lambda f, v: _pod_override(v), None),
    ConfigField(
        "namespace", "a namespace name (DNS-1123 label) among `PODFLEET_TASK_NAMESPACES` "
        "(default: `PODFLEET_NAMESPACE` only), which the watcher must watch",
        "the pod's namespace instead of `PODFLEET_NAMESPACE` (so does "
        "`pod_override.metadata.namespace`; the two must agree)",
        lambda f, v: _checked_name(f, v, dns1123_label_errors), None),
    ConfigField(
        "cluster", "the name of a configured cluster (`PODFLEET_CLUSTERS_FILE`; so does "
        "`pod_override`'s `podfleet.io/cluster` annotation, and the two must agree)",
        "nothing in the pod: the task runs on that cluster only",
        lambda f, v: _cluster_name(f, v), None),
    ConfigField(
        "cluster_selector", "an object of label keys to label values, matched against the "
        "configured clusters' `labels` (not with `cluster`)",
        "nothing in the pod: the task runs on one of the clusters whose labels hold all of "
        "them (within its queue's, `PODFLEET_QUEUE_CLUSTERS`), where there is room",
        lambda f, v: _cluster_selector(f, v), None),
    ConfigField(
        "image", "an image reference, without whitespace",
        "the task container's `image`", lambda f, v: _image(f, v),
        _set_in_container("image")),
    ConfigField(
        "image_pull_policy", f"one of {', '.join(PULL_POLICIES)}",
        "the task container's `imagePullPolicy`", lambda f, v: _pull_policy(f, v),
        _set_in_container("imagePullPolicy")),
    ConfigField(
        "resources", "`requests` and `limits` objects of quantities (cpu, memory, "
        "ephemeral-storage, hugepages-*, prefixed names such as nvidia.com/gpu), or "
        "Airflow's shorthands (" + ", ".join(f"`{k}`" for k in _RESOURCE_SHORTHANDS)
        + "); a request may not exceed its limit",
        "merged into the task container's `resources`, resource by resource",
        _resources, _apply_resources),
    ConfigField(
        "node_selector", "an object of label keys to label values",
        "merged into the pod's `nodeSelector`", _label_map, _merge_map(_spec, "nodeSelector")),
    ConfigField(
        "affinity", "an `Affinity` object (model or JSON)", "the pod's `affinity`",
        _object, _set_in_spec("affinity")),
    ConfigField(
        "tolerations", "a list of `Toleration` objects",
        "added to the pod's `tolerations` (those already there are not repeated)",
        _list_of_objects, _apply_tolerations),
    ConfigField(
        "labels", "an object of label keys to label values",
        "merged into the pod's labels (podfleet's own `podfleet.io/*` labels win)",
        _label_map, _merge_map(_meta, "labels")),
    ConfigField(
        "annotations", f"an object of annotation keys to strings, at most "
        f"{ANNOTATIONS_MAX_BYTES // 1024} KiB in all",
        "merged into the pod's annotations (podfleet's own win)",
        lambda f, v: _annotations(f, v), _merge_map(_meta, "annotations")),
    ConfigField(
        "env", "`{\"NAME\": \"value\"}`, or a list of `EnvVar` objects; names unique",
        "merged into the task container's `env` by name",
        _env, lambda layer, v: layer.env.extend(v)),
    ConfigField(
        "volumes", "a list of `Volume` objects with unique DNS-1123 names",
        "merged into the pod's `volumes` by name",
        lambda f, v: _volumes(f, v), lambda layer, v: layer.volumes.extend(v)),
    ConfigField(
        "volume_mounts", "a list of `VolumeMount` objects (`mountPath` absolute and unique; "
        "the client's `mount_path`, `read_only`, `sub_path` are accepted too)",
        "merged into the task container's `volumeMounts` by path",
        lambda f, v: _mounts(f, v), lambda layer, v: layer.mounts.extend(v)),
    ConfigField(
        "service_account_name", "a service account name (DNS-1123 subdomain) among "
        "`PODFLEET_SERVICE_ACCOUNTS` (default: none; the pod template's own is always "
        "allowed; so for `pod_override`'s)",
        "the pod's `serviceAccountName`",
        lambda f, v: _checked_name(f, v, dns1123_subdomain_errors),
        _set_in_spec("serviceAccountName")),
    ConfigField(
        "priority_class_name", "a PriorityClass name (DNS-1123 subdomain) that exists in "
        "the cluster", "the pod's `priorityClassName`, instead of its queue's "
        "(`PODFLEET_QUEUE_PRIORITY_CLASSES`); a class the cluster lacks fails the task at "
        "launch with the API's error",
        lambda f, v: _checked_name(f, v, dns1123_subdomain_errors),
        _set_in_spec("priorityClassName")),
    ConfigField(
        "active_deadline_seconds", "a positive whole number of seconds",
        "the pod's `activeDeadlineSeconds`: a pod still running after that long is stopped "
        "and its task fails with reason `DeadlineExceeded` (not a disruption: no relaunch)",
        lambda f, v: _positive_integer(f, v), _set_in_spec("activeDeadlineSeconds")),
    ConfigField(
        "security_context", "a `PodSecurityContext` object", "the pod's `securityContext`",
        _object, _set_in_spec("securityContext")),
    ConfigField(
        "container_security_context", "a `SecurityContext` object",
        "the task container's `securityContext`", _object,
        _set_in_container("securityContext")),
    ConfigField(
        "secrets", "a list of Airflow `Secret`s (or dicts with `deploy_type` `env` or "
        "`volume`, `secret`, `deploy_target`, `key`)",
        "`env` with a key: an env var from that key; `env` without: `envFrom` the whole "
        "secret; `volume`: a volume of the secret mounted read-only at `deploy_target`",
        _secrets, _apply_secrets),
)
_FIELDS = {f.name: f for f in EXECUTOR_CONFIG_FIELDS}
KNOWN_FIELDS = tuple(_FIELDS)


def _checked_name(field: str, value: Any, check: Callable[[str], list[str]]) -> str:
    text = _string(field, value)
    errors = check(text)
    if errors:
        raise _fail(field, f"{text!r}: {errors[0]}")
    return text


def _cluster_name(field: str, value: Any) -> str:
    text = _string(field, value)
    problem = cluster_name_problem(text)
    if problem:
        raise _fail(field, problem)
    return text


def _cluster_selector(field: str, value: Any) -> dict[str, str]:
    problem = selector_problem(value)
    if problem:
        raise _fail(field, problem)
    return dict(value)


def _positive_integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(field, f"must be a positive whole number, got {value!r}")
    return value


def _image(field: str, value: Any) -> str:
    text = _string(field, value)
    if any(c.isspace() for c in text):
        raise _fail(field, f"{text!r} must not contain whitespace")
    return text


def _pull_policy(field: str, value: Any) -> str:
    if value not in PULL_POLICIES:
        raise _fail(field, f"must be one of {', '.join(PULL_POLICIES)}, got {value!r}")
    return str(value)


def _annotations(field: str, value: Any) -> dict[str, str]:
    result = _string_map(field, value, key_check=label_key_errors, value_check=None)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in result.items())
    if size > ANNOTATIONS_MAX_BYTES:
        raise _fail(field, f"too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes")
    return result


def _volumes(field: str, value: Any) -> list[dict[str, Any]]:
    items = _list_of_objects(field, value)
    _named(field, items)
    return items


def _mounts(field: str, value: Any) -> list[dict[str, Any]]:
    items = _list_of_objects(field, value)
    for i, item in enumerate(items):
        # Accept the Python client's attribute names too.
        if "mount_path" in item and "mountPath" not in item:
            item["mountPath"] = item.pop("mount_path")
        if "read_only" in item and "readOnly" not in item:
            item["readOnly"] = item.pop("read_only")
        if "sub_path" in item and "subPath" not in item:
            item["subPath"] = item.pop("sub_path")
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise _fail(f"{field}[{i}].name", "must be a non-empty string")
        path = item.get("mountPath")
        if not isinstance(path, str) or not path.startswith("/"):
            raise _fail(f"{field}[{i}].mountPath", "must be an absolute path")
    _named(field, items, key="mountPath")
    return items


def validate_executor_config(config: Any) -> dict[str, Any]:
    """Check ``config`` and return it normalised to plain JSON; raise InvalidExecutorConfig.

    Accepts None or ``{}`` (no per-task changes). Known keys: ``pod_override`` (a V1Pod or a
    dict in the API's JSON form) and podfleet's per-task fields :data:`KNOWN_FIELDS`. Models
    anywhere are converted with the official client's serializer; lists of env vars,
    volumes and mounts come back as lists of API JSON objects.
    """
    if config is None:
        return {}
    if is_api_model(config):
        raise InvalidExecutorConfig(
            "executor_config must be a dict such as {'pod_override': V1Pod(...)}, "
            f"not a bare {type(config).__name__}")
    if not isinstance(config, Mapping):
        raise InvalidExecutorConfig(
            f"executor_config must be a dict or None, not {type(config).__name__}")
    if "KubernetesExecutor" in config:
        raise InvalidExecutorConfig(
            "executor_config['KubernetesExecutor'] is Airflow's removed legacy form; use "
            "'pod_override' with a V1Pod, or podfleet's per-task fields")
    unknown = [k for k in config if k not in _FIELDS]
    if unknown:
        raise InvalidExecutorConfig(
            f"executor_config has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(KNOWN_FIELDS)}")
    result: dict[str, Any] = {}
    for field in EXECUTOR_CONFIG_FIELDS:
        value = config.get(field.name)
        if value is None:
            continue
        result[field.name] = field.normalise(field.name, value)
    override_ns = ((result.get("pod_override") or {}).get("metadata") or {}).get("namespace")
    if override_ns and result.get("namespace") not in (None, override_ns):
        raise InvalidExecutorConfig(
            f"executor_config.namespace {result['namespace']!r} and "
            f"pod_override.metadata.namespace {override_ns!r} disagree")
    try:
        Placement.from_executor_config(result)
    except PlacementError as exc:
        raise InvalidExecutorConfig(str(exc)) from None
    return result


def task_namespace(config: Mapping[str, Any], default: str) -> str:
    """The namespace a task's pod is created in: its own (a validated executor_config's
    ``namespace`` or ``pod_override.metadata.namespace``), else ``default``."""
    override = (config.get("pod_override") or {}).get("metadata") or {}
    return str(config.get("namespace") or override.get("namespace") or default)


def apply_task_fields(pod: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Layer 3: the per-task fields of a normalised executor_config, onto ``pod`` in place."""
    layer = TaskLayer(pod)
    for field in EXECUTOR_CONFIG_FIELDS:
        if field.apply is not None and field.name in config:
            field.apply(layer, config[field.name])
    if layer.env or layer.env_from or layer.mounts:
        layer.spec["containers"][0] = merge_container(layer.task, {
            "env": layer.env or None, "envFrom": layer.env_from or None,
            "volumeMounts": layer.mounts or None})
    if layer.volumes:
        layer.spec["volumes"] = merge_keyed(layer.spec.get("volumes"), layer.volumes,
                                            _item_name)
    return pod


def _item_name(item: dict[str, Any]) -> Any:
    return item.get("name")


def executor_config_markdown() -> str:
    """docs/executor-config.md, generated from :data:`EXECUTOR_CONFIG_FIELDS`."""
    lines = [
        "# `executor_config` fields",
        "",
        "<!-- Generated from podfleet.pods.config.EXECUTOR_CONFIG_FIELDS: "
        "python -m podfleet.pods > docs/executor-config.md -->",
        "",
        "A task's `executor_config` is a dict of these fields (None or `{}`: no per-task "
        "changes). Each is checked at submit, so a bad value fails the submit with a message "
        "naming the field, and applied by the launcher onto the pod built from the pod "
        "template file (`PODFLEET_POD_TEMPLATE_FILE`) and podfleet's defaults, in this "
        "order; `pod_override` goes on last. podfleet's identity (the pod's name, namespace, "
        "`podfleet.io/*` labels and annotations, `restartPolicy: Never`, the `PODFLEET_*` "
        "variables) is set after all of them. Any other key is refused, as is Airflow's "
        "legacy `{\"KubernetesExecutor\": {...}}` form. Models from the official "
        "`kubernetes` client are accepted wherever an object is, and converted to the API's "
        "JSON form. Under Airflow, `pod_template_file` is accepted too (docs/airflow.md). "
        "The built pod must then pass the pod policy (docs/security.md): its namespace in "
        "`PODFLEET_TASK_NAMESPACES`, its service account the template's or in "
        "`PODFLEET_SERVICE_ACCOUNTS`, and the Pod Security level `PODFLEET_POD_SECURITY`.",
        "",
        "| field | accepts | applied to the pod |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{f.name}` | {f.accepts} | {f.applied} |" for f in EXECUTOR_CONFIG_FIELDS]
    return "\n".join(lines) + "\n"
