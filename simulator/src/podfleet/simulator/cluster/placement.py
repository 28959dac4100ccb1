"""Where a pod may run, apart from room: its nodeSelector, required node affinity and
tolerations, matched against a node's labels and taints as kube-scheduler's NodeAffinity and
TaintToleration plugins match them.

- nodeSelector: every label equal; node affinity
  (`requiredDuringSchedulingIgnoredDuringExecution`): any one term whose `matchExpressions`
  (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels) and `matchFields`
  (`metadata.name`) all hold.
- A taint is tolerated by a toleration with the same key (or an empty key with `Exists`),
  the same value (`Equal`, the default) or any (`Exists`), and the same effect (or none).
  `NoSchedule` and `NoExecute` taints keep pods off a node; `PreferNoSchedule` only scores,
  which the simulator does not model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
EFFECTS = (NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE)


@dataclass(frozen=True, slots=True)
class Placement:
    """A pod's placement rules (empty: any node)."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    #: nodeSelectorTerms of the required node affinity (ORed); empty = no affinity.
    affinity_terms: tuple[Json, ...] = ()
    tolerations: tuple[Json, ...] = ()

    @classmethod
    def of_spec(cls, spec: Mapping[str, Any]) -> Placement:
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        return cls(
            node_selector=dict(spec.get("nodeSelector") or {}),
            affinity_terms=tuple(required.get("nodeSelectorTerms") or ()),
            tolerations=tuple(spec.get("tolerations") or ()),
        )

    def matches_node(self, name: str, labels: Mapping[str, str]) -> bool:
        """nodeSelector and required node affinity both hold for this node."""
        if any(labels.get(k) != v for k, v in self.node_selector.items()):
            return False
        return not self.affinity_terms or any(
            _term_matches(term, name, labels) for term in self.affinity_terms)

    def untolerated(self, taints: Iterable[Json], effects: tuple[str, ...] = (
            NO_SCHEDULE, NO_EXECUTE)) -> Json | None:
        """The first taint with one of `effects` that no toleration tolerates."""
        for taint in taints:
            if taint.get("effect") in effects and not any(
                    tolerates(t, taint) for t in self.tolerations):
                return taint
        return None


NO_PLACEMENT = Placement()


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether one toleration tolerates one taint (Kubernetes' ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")


def taint_text(taint: Mapping[str, Any]) -> str:
    """A taint as the scheduler's message shows it: ``{key: value}``."""
    return f"{{{taint.get('key', '')}: {taint.get('value') or ''}}}"


def _requirement(expr: Mapping[str, Any], value: str | None) -> bool:
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(term: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> bool:
    expressions = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not expressions and not fields:
        return False  # an empty term matches no node
    return all(_requirement(e, labels.get(str(e.get("key")))) for e in expressions) and all(
        _requirement(f, name if f.get("key") == "metadata.name" else None) for f in fields)
