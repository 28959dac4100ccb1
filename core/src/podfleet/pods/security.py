"""The Pod Security Standards (``baseline`` and ``restricted``), checked on a built pod.

The cluster's PodSecurity admission enforces these per namespace, if anyone labelled the
namespace; podfleet checks the same controls on every task pod before it is sent
(``PODFLEET_POD_SECURITY``), so a DAG author cannot get a privileged pod into a namespace
whose labels were forgotten. Each control is one row of :data:`CONTROLS`: its level, its name
(as the upstream admission spells it) and a function listing how a pod breaks it. The message
reads like the admission's own: ``violates PodSecurity "restricted:latest": <control>
(<what, where>), …``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from podfleet.settings import PodSecurityLevel

# Capabilities the baseline level lets a container add (the container runtime's defaults).
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# Sysctls namespaced and isolated per pod, hence allowed at baseline.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
RESTRICTED_VOLUME_TYPES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret"})
_VOLUME_KEYS_NOT_TYPES = frozenset({"name"})
_SECCOMP_CONFINED = ("RuntimeDefault", "Localhost")


class PodSecurityViolation(ValueError):
    """A pod breaks the configured level; the message names every control it breaks."""


@dataclass(frozen=True)
class Control:
    """One control: the level that enforces it, its name, and how a pod breaks it."""

    level: PodSecurityLevel
    name: str
    breaches: Callable[[dict[str, Any]], list[str]]


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                yield container


def _context(container: dict[str, Any]) -> dict[str, Any]:
    context = container.get("securityContext")
    return context if isinstance(context, dict) else {}


def _pod_context(spec: dict[str, Any]) -> dict[str, Any]:
    context = spec.get("securityContext")
    return context if isinstance(context, dict) else {}


def _where(container: dict[str, Any]) -> str:
    return f"container {str(container.get('name', ''))!r}"


def _spec(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod.get("spec")
    return spec if isinstance(spec, dict) else {}


def _host_process(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    found = ["pod must not set securityContext.windowsOptions.hostProcess=true"
             ] if (_pod_context(spec).get("windowsOptions") or {}).get("hostProcess") else []
    found += [f"{_where(c)} must not set securityContext.windowsOptions.hostProcess=true"
              for c in _containers(spec)
              if (_context(c).get("windowsOptions") or {}).get("hostProcess")]
    return found


def _host_namespaces(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    return [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC")
            if spec.get(field)]


def _privileged(pod: dict[str, Any]) -> list[str]:
    return [f"{_where(c)} must not set securityContext.privileged=true"
            for c in _containers(_spec(pod)) if _context(c).get("privileged")]


def _added_capabilities(container: dict[str, Any]) -> list[str]:
    added = (_context(container).get("capabilities") or {}).get("add") or []
    return [str(cap) for cap in added]


def _baseline_capabilities(pod: dict[str, Any]) -> list[str]:
    found = []
    for container in _containers(_spec(pod)):
        extra = [cap for cap in _added_capabilities(container)
                 if cap not in BASELINE_CAPABILITIES]
        if extra:
            found.append(f"{_where(container)} must not include {', '.join(map(repr, extra))} "
                         "in securityContext.capabilities.add")
    return found


def _host_path(pod: dict[str, Any]) -> list[str]:
    return [f"hostPath volume {str(v.get('name', ''))!r}"
            for v in _spec(pod).get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]


def _host_ports(pod: dict[str, Any]) -> list[str]:
    found = []
    for container in _containers(_spec(pod)):
        ports = [str(p.get("hostPort")) for p in container.get("ports") or []
                 if isinstance(p, dict) and p.get("hostPort")]
        if ports:
            found.append(f"{_where(container)} uses hostPort {', '.join(ports)}")
    return found


def _app_armor(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    found = []
    if (_pod_context(spec).get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append("pod must not set securityContext.appArmorProfile.type=Unconfined")
    for container in _containers(spec):
        if (_context(container).get("appArmorProfile") or {}).get("type") == "Unconfined":
            found.append(f"{_where(container)} must not set "
                         "securityContext.appArmorProfile.type=Unconfined")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    found += [f"annotation {key}={value!r}" for key, value in annotations.items()
              if str(key).startswith("container.apparmor.security.beta.kubernetes.io/")
              and value not in ("runtime/default",) and not str(value).startswith("localhost/")]
    return found


def _selinux(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    contexts = [("pod", _pod_context(spec))] + [(_where(c), _context(c))
                                                 for c in _containers(spec)]
    found = []
    for where, context in contexts:
        options = context.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"{where} seLinuxOptions.type={options['type']!r}")
        for field in ("user", "role"):
            if options.get(field):
                found.append(f"{where} must not set seLinuxOptions.{field}")
    return found


def _proc_mount(pod: dict[str, Any]) -> list[str]:
    return [f"{_where(c)} must not set securityContext.procMount={_context(c)['procMount']!r}"
            for c in _containers(_spec(pod))
            if _context(c).get("procMount", "Default") != "Default"]


def _seccomp_unconfined(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    found = []
    if (_pod_context(spec).get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("pod must not set securityContext.seccompProfile.type=Unconfined")
    found += [f"{_where(c)} must not set securityContext.seccompProfile.type=Unconfined"
              for c in _containers(spec)
              if (_context(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    return found


def _sysctls(pod: dict[str, Any]) -> list[str]:
    unsafe = [str(s.get("name")) for s in _pod_context(_spec(pod)).get("sysctls") or []
              if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]
    return [f"unsafe sysctl {', '.join(map(repr, unsafe))}"] if unsafe else []


def _volume_types(pod: dict[str, Any]) -> list[str]:
    found = []
    for volume in _spec(pod).get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        kinds = [k for k in volume if k not in _VOLUME_KEYS_NOT_TYPES]
        bad = [k for k in kinds if k not in RESTRICTED_VOLUME_TYPES]
        if bad:
            found.append(f"volume {str(volume.get('name', ''))!r} uses {', '.join(bad)}")
    return found


def _privilege_escalation(pod: dict[str, Any]) -> list[str]:
    return [f"{_where(c)} must set securityContext.allowPrivilegeEscalation=false"
            for c in _containers(_spec(pod))
            if _context(c).get("allowPrivilegeEscalation") is not False]


def _run_as_non_root(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    pod_level = _pod_context(spec).get("runAsNonRoot")
    found = ["pod must not set securityContext.runAsNonRoot=false"] if pod_level is False else []
    for container in _containers(spec):
        own = _context(container).get("runAsNonRoot")
        if own is False:
            found.append(f"{_where(container)} must not set securityContext.runAsNonRoot=false")
        elif own is None and pod_level is not True:
            found.append(f"pod or {_where(container)} must set "
                         "securityContext.runAsNonRoot=true")
    return found


def _run_as_user(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    found = ["pod must not set runAsUser=0"] if _pod_context(spec).get("runAsUser") == 0 else []
    found += [f"{_where(c)} must not set runAsUser=0" for c in _containers(spec)
              if _context(c).get("runAsUser") == 0]
    return found


def _seccomp_confined(pod: dict[str, Any]) -> list[str]:
    spec = _spec(pod)
    pod_type = (_pod_context(spec).get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in _SECCOMP_CONFINED:
        return [f"pod must not set securityContext.seccompProfile.type={pod_type!r}"]
    found = []
    for container in _containers(spec):
        own = (_context(container).get("seccompProfile") or {}).get("type")
        if own is None and pod_type is None:
            found.append(f"pod or {_where(container)} must set "
                         "securityContext.seccompProfile.type to RuntimeDefault or Localhost")
        elif own is not None and own not in _SECCOMP_CONFINED:
            found.append(f"{_where(container)} must not set "
                         f"securityContext.seccompProfile.type={own!r}")
    return found


def _restricted_capabilities(pod: dict[str, Any]) -> list[str]:
    found = []
    for container in _containers(_spec(pod)):
        drop = (_context(container).get("capabilities") or {}).get("drop") or []
        if "ALL" not in drop:
            found.append(f"{_where(container)} must set "
                         "securityContext.capabilities.drop=[\"ALL\"]")
        extra = [cap for cap in _added_capabilities(container) if cap != "NET_BIND_SERVICE"]
        if extra:
            found.append(f"{_where(container)} must not include {', '.join(map(repr, extra))} "
                         "in securityContext.capabilities.add")
    return found


_B, _R = PodSecurityLevel.BASELINE, PodSecurityLevel.RESTRICTED
#: Every control, in the order the upstream standard lists them.
CONTROLS: tuple[Control, ...] = (
    Control(_B, "hostProcess", _host_process),
    Control(_B, "host namespaces", _host_namespaces),
    Control(_B, "privileged", _privileged),
    Control(_B, "non-default capabilities", _baseline_capabilities),
    Control(_B, "hostPath volumes", _host_path),
    Control(_B, "hostPort", _host_ports),
    Control(_B, "forbidden AppArmor profile", _app_armor),
    Control(_B, "seLinuxOptions", _selinux),
    Control(_B, "procMount", _proc_mount),
    Control(_B, "seccompProfile", _seccomp_unconfined),
    Control(_B, "forbidden sysctls", _sysctls),
    Control(_R, "restricted volume types", _volume_types),
    Control(_R, "allowPrivilegeEscalation != false", _privilege_escalation),
    Control(_R, "runAsNonRoot != true", _run_as_non_root),
    Control(_R, "runAsUser=0", _run_as_user),
    Control(_R, "seccompProfile", _seccomp_confined),
    Control(_R, "unrestricted capabilities", _restricted_capabilities),
)


def pod_security_breaches(pod: dict[str, Any], level: PodSecurityLevel) -> list[str]:
    """``"<control> (<details>)"`` for every control of ``level`` that ``pod`` breaks."""
    if level is PodSecurityLevel.OFF:
        return []
    levels = {_B} if level is _B else {_B, _R}
    return [f"{control.name} ({'; '.join(found)})" for control in CONTROLS
            if control.level in levels and (found := control.breaches(pod))]


def check_pod_security(pod: dict[str, Any], level: PodSecurityLevel) -> None:
    """Raise :class:`PodSecurityViolation` naming every control of ``level`` ``pod`` breaks."""
    breaches = pod_security_breaches(pod, level)
    if breaches:
        raise PodSecurityViolation(
            f'violates PodSecurity "{level.value}:latest": {", ".join(breaches)}')
