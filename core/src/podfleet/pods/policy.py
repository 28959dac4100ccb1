"""Who may run what where: the checks every built task pod passes before it is sent.

A DAG author controls a task's ``executor_config`` (its namespace, its service account, its
whole ``pod_override``), so without these a task could run in ``kube-system`` as an admin
service account. The checks run on the *built* pod (template, task fields and override
merged), at submit in the executor and again in the launcher just before the create (a
message signed by an executor with older settings is refused too):

- its namespace must be one of ``PODFLEET_TASK_NAMESPACES`` (default: ``PODFLEET_NAMESPACE``);
- its service account must be the pod template's own (or none: the namespace's default) or
  one of ``PODFLEET_SERVICE_ACCOUNTS``;
- it must meet the Pod Security Standards level ``PODFLEET_POD_SECURITY``
  (:mod:`podfleet.pods.security`).
"""

from __future__ import annotations

from typing import Any

from podfleet.pods.config import InvalidExecutorConfig
from podfleet.pods.security import pod_security_breaches
from podfleet.settings import PodSecurityLevel, Settings


class PodRefused(InvalidExecutorConfig):
    """A built pod breaks podfleet's pod policy; the message names each rule it breaks."""


def pod_service_account(pod: dict[str, Any]) -> str | None:
    """The service account a pod runs as (``serviceAccount`` is the deprecated spelling)."""
    spec = pod.get("spec") or {}
    name = spec.get("serviceAccountName") or spec.get("serviceAccount")
    return str(name) if name else None


class PodPolicy:
    """The allow-lists and security level of one process's settings."""

    def __init__(self, settings: Settings, template_service_account: str | None) -> None:
        self.namespaces = settings.kubernetes.task_namespaces
        self.watched = settings.kubernetes.watch_namespaces
        self.default_namespace = settings.kubernetes.namespace
        self.service_accounts = settings.pods.service_accounts
        self.template_service_account = template_service_account
        self.level: PodSecurityLevel = settings.pods.security

    def problems(self, pod: dict[str, Any]) -> list[str]:
        """Every rule ``pod`` breaks, each naming the setting that decides it."""
        found: list[str] = []
        namespace = (pod.get("metadata") or {}).get("namespace") or self.default_namespace
        if self.namespaces == ("*",):
            if self.watched != ("*",) and namespace not in self.watched:
                found.append(f"namespace {namespace!r} is not watched "
                             f"(PODFLEET_WATCH_NAMESPACES: {','.join(self.watched)})")
        elif namespace not in self.namespaces:
            found.append(f"namespace {namespace!r} is not in PODFLEET_TASK_NAMESPACES "
                         f"({','.join(self.namespaces)})")
        account = pod_service_account(pod)
        if (account is not None and account != self.template_service_account
                and self.service_accounts != ("*",) and account not in self.service_accounts):
            listed = ",".join(self.service_accounts) or "empty: only the pod template's"
            found.append(f"serviceAccountName {account!r} is not in PODFLEET_SERVICE_ACCOUNTS "
                         f"({listed})")
        breaches = pod_security_breaches(pod, self.level)
        if breaches:
            found.append(f'violates PodSecurity "{self.level.value}:latest" '
                         f'(PODFLEET_POD_SECURITY): {", ".join(breaches)}')
        return found

    def check(self, pod: dict[str, Any]) -> None:
        """Raise :class:`PodRefused` naming every rule ``pod`` breaks."""
        found = self.problems(pod)
        if found:
            raise PodRefused("; ".join(found))
