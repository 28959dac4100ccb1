"""podfleet's settings from an Airflow configuration: ``[podfleet]``, with the
KubernetesExecutor's ``[kubernetes_executor]`` section as the fallback.

One precedence, used by the Airflow executor (through Airflow's own config) and by
``podfleet worker --airflow-config`` (through :class:`AirflowConfigFile`), so the scheduler
and the workers derive the same settings from the same file:

1. ``[podfleet] option`` (airflow.cfg or ``AIRFLOW__PODFLEET__OPTION``) set to something other
   than podfleet's default;
2. the ``PODFLEET_*`` variable;
3. the ``[kubernetes_executor]`` options that mean the same thing (:data:`FALLBACKS`), when set
   to something other than the KubernetesExecutor's default;
4. podfleet's default.

Airflow's own lookup puts a ``[podfleet]`` option above its default, so the provider shows
levels 2-4 as the options' defaults, and ``airflow config get-value podfleet X`` prints what
the executor uses. ``[kubernetes_executor]`` options with no podfleet meaning
(:data:`IGNORED`) are reported by :func:`ignored_options`, for one warning.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from podfleet.settings import VARIABLES, SettingsError, Variable

#: ``get(section, option)``: an option's value in an Airflow config, None when unset.
ConfigGetter = Callable[[str, str], "str | None"]

SECTION = "podfleet"
KUBERNETES_EXECUTOR = "kubernetes_executor"
PREFIX = "PODFLEET_"

#: The cncf.kubernetes provider's defaults (10.25) of the options read here: a value equal to
#: its default is treated as unset, whether the provider is installed (and Airflow reports its
#: defaults) or not.
KUBERNETES_EXECUTOR_DEFAULTS: dict[str, str] = {
    "pod_template_file": "",
    "worker_container_repository": "",
    "worker_container_tag": "",
    "namespace": "default",
    "delete_worker_pods": "True",
    "delete_worker_pods_on_failure": "False",
    "worker_pod_pending_fatal_container_state_reasons":
        "CreateContainerConfigError,ErrImagePull,CreateContainerError,ImageInspectError,"
        "InvalidImageName",
    "multi_namespace_mode": "False",
    "multi_namespace_mode_namespace_list": "",
    "in_cluster": "True",
    "cluster_context": "",
    "config_file": "",
    "api_client_retry_configuration": "",
    "logs_task_metadata": "False",
    "running_pod_log_lines": "100",
    "worker_pods_creation_batch_size": "1",
    "async_pod_creation": "False",
    "pod_creation_max_concurrency": "0",
    "client_factory": "",
    "async_client_factory": "",
    "kube_client_request_args": "",
    "delete_option_kwargs": "",
    "enable_tcp_keepalive": "True",
    "tcp_keep_idle": "120",
    "tcp_keep_intvl": "30",
    "tcp_keep_cnt": "6",
    "verify_ssl": "True",
    "ssl_ca_cert": "",
    "task_publish_max_retries": "0",
    "pod_launch_failure_retries": "1",
    "pod_launch_failure_excluded_container_reasons": "Error",
}

_TRUE = ("true", "t", "1", "yes", "y", "on")


def _flag(text: str) -> bool:
    return text.strip().lower() in _TRUE


def _same(values: Mapping[str, str]) -> str | None:
    (value,) = values.values()
    return value


def _image(values: Mapping[str, str]) -> str | None:
    repository, tag = values["worker_container_repository"], values["worker_container_tag"]
    if not repository:
        return None   # a tag alone names no image; the KubernetesExecutor needs both too
    return f"{repository}:{tag}" if tag else repository


def _delete_policy(values: Mapping[str, str]) -> str | None:
    if not _flag(values["delete_worker_pods"]):
        return "never"
    return "always" if _flag(values["delete_worker_pods_on_failure"]) else "on_success"


def _watch_namespaces(values: Mapping[str, str]) -> str | None:
    if not _flag(values["multi_namespace_mode"]):
        return None   # the list means nothing without the mode, upstream too
    return values["multi_namespace_mode_namespace_list"].strip() or "*"


def _in_cluster(values: Mapping[str, str]) -> str | None:
    return "true" if _flag(values["in_cluster"]) else "false"


@dataclass(frozen=True, slots=True)
class Fallback:
    """``[kubernetes_executor] options`` → one podfleet setting, through ``convert``.

    ``convert`` gets every option of the entry (unset ones at the KubernetesExecutor's
    default) and returns the setting's text, or None for "no value".
    """

    options: tuple[str, ...]
    setting: str
    convert: Callable[[Mapping[str, str]], str | None]
    note: str = ""


#: Every ``[kubernetes_executor]`` option with a podfleet meaning.
FALLBACKS: tuple[Fallback, ...] = (
    Fallback(("worker_container_repository", "worker_container_tag"), "PODFLEET_WORKER_IMAGE",
             _image, "`repository:tag`; the image of the task container when neither the "
                     "template nor the task names one."),
    Fallback(("pod_template_file",), "PODFLEET_POD_TEMPLATE_FILE", _same,
             "Read by the workers, which build the pods: the file must be there too."),
    Fallback(("namespace",), "PODFLEET_NAMESPACE", _same,
             "A task can pick another with `pod_override.metadata.namespace`, if it is "
             "watched."),
    Fallback(("delete_worker_pods", "delete_worker_pods_on_failure"), "PODFLEET_DELETE_POLICY",
             _delete_policy, "`delete_worker_pods = False` → `never`; "
                             "`delete_worker_pods_on_failure = True` → `always`. Upstream's "
                             "defaults (keep failed pods) are not carried over: podfleet "
                             "deletes every finished pod, its log archived; `on_success` "
                             "keeps failed ones."),
    Fallback(("multi_namespace_mode", "multi_namespace_mode_namespace_list"),
             "PODFLEET_WATCH_NAMESPACES", _watch_namespaces,
             "The list, or `*` (all namespaces, with the ClusterRole in "
             "`deploy/all-namespaces`) when it is empty."),
    Fallback(("in_cluster",), "PODFLEET_IN_CLUSTER", _in_cluster,
             "Upstream's default is `True`, podfleet's `false`: only a value written down "
             "is carried over."),
    Fallback(("config_file",), "PODFLEET_KUBECONFIG", _same),
    Fallback(("cluster_context",), "PODFLEET_KUBE_CONTEXT", _same),
    Fallback(("worker_pod_pending_fatal_container_state_reasons",),
             "PODFLEET_FATAL_CONTAINER_REASONS", _same,
             "Also `pending_timeout_seconds`: a pod that stays Pending fails its task."),
)

#: ``[kubernetes_executor]`` options read by the Airflow executor's own ``[podfleet]`` options
#: of the same name (they have no ``PODFLEET_*`` variable).
SAME_NAME_OPTIONS = ("pod_launch_failure_retries",
                     "pod_launch_failure_excluded_container_reasons")

#: ``[kubernetes_executor]`` options with no podfleet meaning, and what podfleet does instead.
IGNORED: dict[str, str] = {
    "api_client_retry_configuration":
        "the launchers retry 429, 5xx and timeouts: `launch_max_attempts`, "
        "`launch_backoff_seconds`, `launch_backoff_max_seconds`",
    "task_publish_max_retries": "the launchers retry quota errors: `launch_max_attempts`",
    "worker_pods_creation_batch_size":
        "one cluster-wide creation rate across every worker: `launch_rate`, `launch_burst` "
        "(and `batch_size`, tasks per launch message)",
    "async_pod_creation": "workers always create pods concurrently",
    "pod_creation_max_concurrency": "`podfleet worker --processes/--threads`",
    "logs_task_metadata": "podfleet's log reads return the log as it is",
    "running_pod_log_lines": "`get_task_log` returns the pod's whole log",
    "client_factory": "credentials come from the kubeconfig or the in-cluster token",
    "async_client_factory": "credentials come from the kubeconfig or the in-cluster token",
    "kube_client_request_args": "only the timeout is configurable: `kube_timeout_seconds`",
    "delete_option_kwargs": "deletes use the pod's own grace period",
    "enable_tcp_keepalive": "the one watch uses server-side timeouts and resumes from the "
                            "resourceVersion kept in Redis",
    "tcp_keep_idle": "see `enable_tcp_keepalive`",
    "tcp_keep_intvl": "see `enable_tcp_keepalive`",
    "tcp_keep_cnt": "see `enable_tcp_keepalive`",
    "verify_ssl": "the kubeconfig's `insecure-skip-tls-verify`",
    "ssl_ca_cert": "the kubeconfig's `certificate-authority(-data)`",
}

_VARIABLES: dict[str, Variable] = {v.name: v for v in VARIABLES}


def option_name(variable: str) -> str:
    """``PODFLEET_REDIS_URL`` → ``redis_url``."""
    return variable[len(PREFIX):].lower()


def kubernetes_executor_value(get: ConfigGetter, option: str) -> str | None:
    """``[kubernetes_executor] option`` when set to something other than upstream's default."""
    value = get(KUBERNETES_EXECUTOR, option)
    if value is None or value.strip() == KUBERNETES_EXECUTOR_DEFAULTS.get(option, ""):
        return None
    return value.strip()


def kubernetes_executor_environ(get: ConfigGetter) -> dict[str, str]:
    """The ``PODFLEET_*`` values ``[kubernetes_executor]`` implies (:data:`FALLBACKS`).

    A value podfleet cannot use raises a one-line :class:`SettingsError` naming the option.
    """
    env: dict[str, str] = {}
    for fallback in FALLBACKS:
        set_here = {o: kubernetes_executor_value(get, o) for o in fallback.options}
        if all(v is None for v in set_here.values()):
            continue
        values = {o: KUBERNETES_EXECUTOR_DEFAULTS[o] if v is None else v
                  for o, v in set_here.items()}
        text = fallback.convert(values)
        if text is None:
            continue
        try:
            _VARIABLES[fallback.setting].read({fallback.setting: text})
        except SettingsError as exc:
            options = ", ".join(o for o, v in set_here.items() if v is not None)
            raise SettingsError(f"[{KUBERNETES_EXECUTOR}] {options} (read as "
                                f"{fallback.setting}): {exc}") from None
        env[fallback.setting] = text
    return env


def ignored_options(get: ConfigGetter) -> list[str]:
    """The ``[kubernetes_executor]`` options set (not at their default) that podfleet ignores."""
    return [o for o in IGNORED if kubernetes_executor_value(get, o) is not None]


def ignored_options_warning(options: list[str]) -> str:
    """One line naming each ignored option and what podfleet does instead."""
    return (f"podfleet ignores these [{KUBERNETES_EXECUTOR}] options: "
            + "; ".join(f"{o} ({IGNORED[o]})" for o in options))


def fallback_environ(get: ConfigGetter, environ: Mapping[str, str] | None = None
                     ) -> dict[str, str]:
    """Levels 2-4 of the precedence: the ``PODFLEET_*`` variables of ``environ`` (default: the
    process environment), over what ``[kubernetes_executor]`` implies."""
    env = kubernetes_executor_environ(get)
    env.update((k, v) for k, v in (os.environ if environ is None else environ).items()
               if k.startswith(PREFIX))
    return env


def podfleet_environ(get: ConfigGetter, environ: Mapping[str, str] | None = None
                     ) -> dict[str, str]:
    """The ``PODFLEET_*`` mapping :meth:`Settings.from_env` reads, all four levels applied."""
    env = fallback_environ(get, environ)
    for variable in VARIABLES:
        value = get(SECTION, option_name(variable.name))
        if value is not None and value != variable.default:
            env[variable.name] = value
    return env


class AirflowConfigFile:
    """An airflow.cfg read as Airflow reads its plain options: ``AIRFLOW__SECTION__OPTION``
    first, then the file (no ``_cmd``/``_secret`` variants, no provider defaults).

    For processes without Airflow installed (``podfleet worker --airflow-config``); with no
    ``path``, the variables alone.
    """

    def __init__(self, path: Path | None, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.environ = os.environ if environ is None else environ
        self.parser = configparser.ConfigParser(interpolation=None)
        if path is None:
            return
        try:
            with path.open(encoding="utf-8") as handle:
                self.parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise SettingsError(f"--airflow-config: cannot read {path}: "
                                f"{str(exc).splitlines()[0]}") from None

    def get(self, section: str, option: str) -> str | None:
        variable = f"AIRFLOW__{section.upper()}__{option.upper()}"
        if variable in self.environ:
            return self.environ[variable]
        return self.parser.get(section, option, fallback=None)


def airflow_cfg_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where Airflow reads its airflow.cfg: ``$AIRFLOW_CONFIG``, else
    ``$AIRFLOW_HOME/airflow.cfg`` (``~/airflow`` by default)."""
    env = os.environ if environ is None else environ
    if env.get("AIRFLOW_CONFIG"):
        return Path(env["AIRFLOW_CONFIG"]).expanduser()
    return Path(env.get("AIRFLOW_HOME") or "~/airflow").expanduser() / "airflow.cfg"


def mapping_markdown() -> str:
    """docs/airflow.md's table of ``[kubernetes_executor]`` options, from :data:`FALLBACKS`
    and :data:`IGNORED`."""
    rows = ["| `[kubernetes_executor]` | podfleet | notes |", "|---|---|---|"]
    for fallback in FALLBACKS:
        options = ", ".join(f"`{o}`" for o in fallback.options)
        rows.append(f"| {options} | `{option_name(fallback.setting)}` | {fallback.note} |")
    for option in SAME_NAME_OPTIONS:
        rows.append(f"| `{option}` | `{option}` | The executor's own option; same meaning. |")
    for option, instead in IGNORED.items():
        rows.append(f"| `{option}` | none (warned about) | Instead: {instead}. |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # python -m podfleet.settings.airflow_config: the table docs/airflow.md holds.
    print(mapping_markdown(), end="")
