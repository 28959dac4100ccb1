"""Decoding, defaulting and validation of request bodies, as the API server does them.

A body goes through three gates, each with the real server's answer on failure:
decode (not JSON, not an object, wrong apiVersion or kind → 400 BadRequest), validate
(names, labels, annotations, containers, quantities → 422 Invalid with one cause per field),
and for updates the pod's immutability rules (→ 422 Forbidden cause).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
import yaml

from podfleet.kube import rules
from podfleet.kube.rules import dns1123_label_errors, dns1123_subdomain_errors
from podfleet.simulator.apiserver import protobuf
from podfleet.simulator.apiserver.errors import (
    FieldError,
    bad_request,
    duplicate,
    forbidden,
    invalid,
    invalid_object,
    required,
    too_long,
    unsupported_media_type,
)
from podfleet.simulator.cluster.resources import qos_class

ANNOTATIONS_MAX_BYTES = 256 * 1024
_ANNOTATIONS_TOO_LONG = f"must have at most {ANNOTATIONS_MAX_BYTES} bytes"

# A fleet's pods repeat a few label keys, label values and quantities ("podfleet.io/dag-id",
# "128Mi"), and checking one costs a few regular-expression matches: the verdict on each
# distinct string is remembered (a bounded cache, so unique values cannot grow it).
_CACHED_STRINGS = 4096


@lru_cache(maxsize=_CACHED_STRINGS)
def label_key_errors(key: str) -> tuple[str, ...]:
    """`podfleet.kube.rules.label_key_errors`, remembered per distinct key."""
    return tuple(rules.label_key_errors(key))


@lru_cache(maxsize=_CACHED_STRINGS)
def label_value_errors(value: str) -> tuple[str, ...]:
    """`podfleet.kube.rules.label_value_errors`, remembered per distinct value."""
    return tuple(rules.label_value_errors(value))


@lru_cache(maxsize=_CACHED_STRINGS)
def _parse_quantity_text(text: str) -> Decimal:
    return rules.parse_quantity(text)


def parse_quantity(quantity: Any) -> Decimal:
    """`podfleet.kube.rules.parse_quantity`, remembered per distinct string (ValueError if bad)."""
    if isinstance(quantity, str):
        return _parse_quantity_text(quantity)  # errors are raised again, never cached
    return rules.parse_quantity(quantity)


def decode_body(body: bytes, content_type: str, kind: str) -> Any:
    """Parse a JSON (or YAML) request body; 400 BadRequest when it is not one."""
    if not body.strip():
        raise bad_request(
            f"the object provided is unrecognized (must be of type {kind}): "
            "couldn't get version/kind; json parse error: unexpected end of JSON input"
        )
    if content_type == protobuf.PROTOBUF:
        try:
            return protobuf.decode(body)
        except (protobuf.ProtobufError, UnicodeDecodeError) as exc:
            raise unsupported_media_type(
                content_type, ["application/json", "application/yaml"]
            ) from exc
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body)
        return orjson.loads(body)
    except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise bad_request(
            f"the object provided is unrecognized (must be of type {kind}): "
            f"couldn't get version/kind; json parse error: {exc}"
        ) from None


def decode_object(
    body: bytes, content_type: str, kind: str, api_version: str = "v1"
) -> dict[str, Any]:
    """A request body that must be a `kind` object of `api_version`."""
    data = decode_body(body, content_type, kind)
    if not isinstance(data, dict):
        raise bad_request(
            f"the object provided is unrecognized (must be of type {kind}): "
            f"couldn't get version/kind; json parse error: cannot unmarshal "
            f"{type(data).__name__} into Go value of type struct"
        )
    got_version = data.get("apiVersion")
    got_kind = data.get("kind")
    if got_version is not None and got_version != api_version:
        raise bad_request(
            f"the API version in the data ({got_version}) does not match the expected API "
            f"version ({api_version})"
        )
    if got_kind is not None and got_kind != kind:
        raise bad_request(
            f"the object provided is unrecognized (must be of type {kind}): "
            f'{got_kind} in version "{got_version or api_version}" cannot be handled as a {kind}'
        )
    data["kind"] = kind
    data["apiVersion"] = api_version
    meta = data.get("metadata")
    if meta is None:
        data["metadata"] = {}
    elif not isinstance(meta, dict):
        raise bad_request(
            f'{kind} in version "{api_version}" cannot be handled as a {kind}: json: cannot '
            "unmarshal into Go struct field .metadata of type v1.ObjectMeta"
        )
    return data


def _display_name(meta: dict[str, Any]) -> str:
    name = meta.get("name")
    return name if isinstance(name, str) else ""


def validate_metadata(meta: dict[str, Any], *, name_rule: str = "subdomain") -> list[FieldError]:
    """ObjectMeta rules: name, labels, annotations (and generateName, already applied)."""
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name:
        errors.append(required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errors.append(invalid("metadata.name", name, "must be a string"))
    else:
        check = dns1123_subdomain_errors if name_rule == "subdomain" else dns1123_label_errors
        errors.extend(invalid("metadata.name", name, msg) for msg in check(name))
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            errors.append(invalid("metadata.labels", labels, "must be a map of strings"))
        else:
            for key, value in labels.items():
                # Errors are rare: test the cached verdict before building any FieldError.
                if key_errors := label_key_errors(key):
                    errors.extend(invalid("metadata.labels", key, m) for m in key_errors)
                if not isinstance(value, str):
                    errors.append(invalid(f"metadata.labels[{key}]", value, "must be a string"))
                    continue
                if value_errors := label_value_errors(value):
                    errors.extend(invalid("metadata.labels", value, m) for m in value_errors)
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            errors.append(invalid("metadata.annotations", annotations, "must be a map of strings"))
        else:
            total = 0
            for key, value in annotations.items():
                if key_errors := label_key_errors(key.lower()):
                    errors.extend(invalid("metadata.annotations", key, m) for m in key_errors)
                if not isinstance(value, str):
                    errors.append(
                        invalid(f"metadata.annotations[{key}]", value, "must be a string")
                    )
                    continue
                total += len(key) + len(value.encode())
            if total > ANNOTATIONS_MAX_BYTES:
                errors.append(too_long("metadata.annotations", _ANNOTATIONS_TOO_LONG))
    return errors


def _validate_resources(path: str, resources: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if resources is None:
        return errors
    if not isinstance(resources, dict):
        return [invalid(path, resources, "must be an object")]
    parsed: dict[str, dict[str, Any]] = {}
    for section in ("limits", "requests"):
        values = resources.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(invalid(f"{path}.{section}", values, "must be a map of quantities"))
            continue
        parsed[section] = {}
        for resource_name, quantity in values.items():
            field = f"{path}.{section}[{resource_name}]"
            try:
                amount = parse_quantity(quantity)
            except ValueError as exc:
                errors.append(invalid(field, quantity, str(exc)))
                continue
            if amount < 0:
                errors.append(invalid(field, quantity, "must be greater than or equal to 0"))
            parsed[section][resource_name] = amount
    limits = parsed.get("limits", {})
    for resource_name, amount in parsed.get("requests", {}).items():
        limit = limits.get(resource_name)
        if limit is not None and amount > limit:
            errors.append(
                invalid(
                    f"{path}.requests",
                    resources["requests"][resource_name],
                    f"must be less than or equal to {resource_name} limit of "
                    f"{resources['limits'][resource_name]}",
                )
            )
    return errors


def _validate_containers(
    path: str, containers: Any, *, required_nonempty: bool, seen: set[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    if containers is None or containers == []:
        if required_nonempty:
            errors.append(required(path))
        return errors
    if not isinstance(containers, list):
        return [invalid(path, containers, "must be a list of containers")]
    for index, container in enumerate(containers):
        cpath = f"{path}[{index}]"
        if not isinstance(container, dict):
            errors.append(invalid(cpath, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            errors.append(required(f"{cpath}.name"))
        elif not isinstance(name, str):
            errors.append(invalid(f"{cpath}.name", name, "must be a string"))
        else:
            errors.extend(invalid(f"{cpath}.name", name, m) for m in dns1123_label_errors(name))
            if name in seen:
                errors.append(duplicate(f"{cpath}.name", name))
            seen.add(name)
        image = container.get("image")
        if not image or not isinstance(image, str) or not image.strip():
            errors.append(required(f"{cpath}.image"))
        for list_field in ("command", "args"):
            value = container.get(list_field)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, str) for v in value)
            ):
                errors.append(invalid(f"{cpath}.{list_field}", value, "must be a list of strings"))
        errors.extend(_validate_resources(f"{cpath}.resources", container.get("resources")))
    return errors


def validate_pod(pod: dict[str, Any]) -> None:
    """Raise 422 Invalid listing every problem of a pod about to be stored."""
    meta = pod["metadata"]
    errors = validate_metadata(meta)
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        errors.append(required("spec.containers"))
    else:
        seen: set[str] = set()
        errors.extend(
            _validate_containers(
                "spec.containers", spec.get("containers"), required_nonempty=True, seen=seen
            )
        )
        errors.extend(
            _validate_containers(
                "spec.initContainers",
                spec.get("initContainers"),
                required_nonempty=False,
                seen=seen,
            )
        )
        policy = spec.get("restartPolicy")
        if policy is not None and policy not in ("Always", "OnFailure", "Never"):
            errors.append(
                FieldError(
                    "spec.restartPolicy",
                    "FieldValueNotSupported",
                    'supported values: "Always", "OnFailure", "Never"',
                    policy,
                    True,
                )
            )
        grace = spec.get("terminationGracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
            errors.append(
                invalid("spec.terminationGracePeriodSeconds", grace, "must be an integer")
            )
    if errors:
        raise invalid_object("Pod", _display_name(meta), errors)


_MUTABLE_SPEC_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _without_mutable(spec: dict[str, Any]) -> dict[str, Any]:
    copy = dict(spec)
    for key in ("containers", "initContainers"):
        if isinstance(copy.get(key), list):
            copy[key] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                for c in copy[key]
            ]
    copy.pop("activeDeadlineSeconds", None)
    copy.pop("tolerations", None)
    return copy


def validate_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """The pod rules for an update: a valid pod, same name/uid, spec changes only as allowed."""
    errors: list[FieldError] = []
    old_meta, new_meta = old["metadata"], new["metadata"]
    for key in ("name", "namespace", "uid", "generateName", "creationTimestamp"):
        if key in new_meta and new_meta.get(key) != old_meta.get(key):
            errors.append(invalid(f"metadata.{key}", new_meta.get(key), "field is immutable"))
    old_spec = old.get("spec") or {}
    new_spec = new.get("spec") or {}
    # The scheduler's binding may set nodeName once; everything else is fixed.
    if not old_spec.get("nodeName") and new_spec.get("nodeName"):
        old_spec = {**old_spec, "nodeName": new_spec["nodeName"]}
    if isinstance(new_spec, dict) and _without_mutable(old_spec) != _without_mutable(new_spec):
        errors.append(forbidden("spec", _MUTABLE_SPEC_MESSAGE))
    if errors:
        raise invalid_object("Pod", _display_name(old_meta), errors)
    validate_pod(new)


def validate_namespace(ns: dict[str, Any]) -> None:
    meta = ns["metadata"]
    errors = validate_metadata(meta, name_rule="label")
    if errors:
        raise invalid_object("Namespace", _display_name(meta), errors)


def validate_node(node: dict[str, Any]) -> None:
    meta = node["metadata"]
    errors = validate_metadata(meta)
    if errors:
        raise invalid_object("Node", _display_name(meta), errors)


def default_pod(pod: dict[str, Any], *, grace_period_s: int) -> None:
    """Fill the fields a real API server defaults on create (spec, containers, status)."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", grace_period_s)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault(
        "tolerations",
        [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            image = container.get("image", "")
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            container.setdefault(
                "imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always"
            )
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
