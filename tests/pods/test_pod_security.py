"""The Pod Security Standards controls, one at a time: each breach is named by its control,
at the level that enforces it and not below."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podfleet.pods.security import (
    CONTROLS,
    PodSecurityViolation,
    check_pod_security,
    pod_security_breaches,
)
from podfleet.settings import PodSecurityLevel

BASELINE, RESTRICTED = PodSecurityLevel.BASELINE, PodSecurityLevel.RESTRICTED
HARDENED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def restricted_pod() -> dict[str, Any]:
    """A pod that meets the restricted level."""
    return {"metadata": {"name": "p"}, "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "base", "image": "i",
                        "securityContext": copy.deepcopy(HARDENED_CONTAINER)}],
        "volumes": [{"name": "scratch", "emptyDir": {}}]}}


def container_context(pod: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = pod["spec"]["containers"][0]["securityContext"]
    return context


def pod_context(pod: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = pod["spec"]["securityContext"]
    return context


# (control, level that enforces it, how to break it on a restricted pod)
BREACHES: list[tuple[str, PodSecurityLevel, Any]] = [
    ("hostProcess", BASELINE,
     lambda p: container_context(p).update(windowsOptions={"hostProcess": True})),
    ("host namespaces", BASELINE, lambda p: p["spec"].update(hostNetwork=True)),
    ("host namespaces", BASELINE, lambda p: p["spec"].update(hostPID=True)),
    ("privileged", BASELINE, lambda p: container_context(p).update(privileged=True)),
    ("non-default capabilities", BASELINE,
     lambda p: container_context(p)["capabilities"].update(add=["SYS_ADMIN"])),
    ("hostPath volumes", BASELINE,
     lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}})),
    ("hostPort", BASELINE,
     lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80,
                                                         "hostPort": 80}])),
    ("forbidden AppArmor profile", BASELINE,
     lambda p: container_context(p).update(appArmorProfile={"type": "Unconfined"})),
    ("seLinuxOptions", BASELINE,
     lambda p: pod_context(p).update(seLinuxOptions={"type": "spc_t"})),
    ("procMount", BASELINE, lambda p: container_context(p).update(procMount="Unmasked")),
    ("seccompProfile", BASELINE,
     lambda p: pod_context(p).update(seccompProfile={"type": "Unconfined"})),
    ("forbidden sysctls", BASELINE,
     lambda p: pod_context(p).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}])),
    ("restricted volume types", RESTRICTED,
     lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}})),
    ("allowPrivilegeEscalation != false", RESTRICTED,
     lambda p: container_context(p).pop("allowPrivilegeEscalation")),
    ("runAsNonRoot != true", RESTRICTED, lambda p: pod_context(p).pop("runAsNonRoot")),
    ("runAsUser=0", RESTRICTED, lambda p: container_context(p).update(runAsUser=0)),
    ("seccompProfile", RESTRICTED, lambda p: pod_context(p).pop("seccompProfile")),
    ("unrestricted capabilities", RESTRICTED,
     lambda p: container_context(p).update(capabilities={"drop": ["NET_RAW"]})),
    ("unrestricted capabilities", RESTRICTED,
     lambda p: container_context(p)["capabilities"].update(add=["CHOWN"])),
]


def test_a_restricted_pod_meets_every_level() -> None:
    for level in PodSecurityLevel:
        assert pod_security_breaches(restricted_pod(), level) == []


def test_a_plain_pod_meets_baseline_but_not_restricted() -> None:
    plain = {"spec": {"containers": [{"name": "base", "image": "i"}]}}
    assert pod_security_breaches(plain, BASELINE) == []
    assert pod_security_breaches(plain, RESTRICTED) != []


@pytest.mark.parametrize(("control", "level", "breach"), BREACHES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BREACHES)])
def test_each_breach_is_named_by_its_control_at_its_level(
        control: str, level: PodSecurityLevel, breach: Any) -> None:
    # Given a pod that meets restricted, changed to break one control
    pod = restricted_pod()
    breach(pod)
    # Then that level names the control, and off lets it through
    assert [b for b in pod_security_breaches(pod, level) if b.startswith(control + " (")]
    assert pod_security_breaches(pod, PodSecurityLevel.OFF) == []


@pytest.mark.parametrize("control", [c.name for c in CONTROLS if c.level is RESTRICTED])
def test_restricted_only_controls_are_not_enforced_at_baseline(control: str) -> None:
    plain = {"spec": {"containers": [{"name": "base", "image": "i"}],
                      "volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}}
    assert not [b for b in pod_security_breaches(plain, BASELINE)
                if b.startswith(control + " (")]


def test_the_violation_reads_like_the_admission_controller() -> None:
    pod = restricted_pod()
    container_context(pod).pop("allowPrivilegeEscalation")
    with pytest.raises(PodSecurityViolation) as caught:
        check_pod_security(pod, RESTRICTED)
    assert str(caught.value) == (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container \'base\' must set securityContext.allowPrivilegeEscalation=false)')


def test_init_containers_are_checked_too() -> None:
    pod = restricted_pod()
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "i",
                                      "securityContext": {"privileged": True}}]
    assert any("container 'setup'" in b for b in pod_security_breaches(pod, BASELINE))
