"""A kubeconfig for a running simulator, accepted unchanged by kubectl and the official client."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DEFAULT_TOKEN = "podfleet-simulator"


def kubeconfig_document(
    url: str,
    *,
    token: str | None = None,
    name: str = "podfleet-sim",
    namespace: str = "default",
    ca_data: str | None = None,
) -> dict[str, object]:
    """The kubeconfig as a mapping: one cluster, one token user, one current context.

    `ca_data` is the base64 PEM of the CA that signed an HTTPS simulator's certificate.
    """
    cluster: dict[str, str] = {"server": url}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token or DEFAULT_TOKEN}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    *,
    token: str | None = None,
    name: str = "podfleet-sim",
    ca_data: str | None = None,
) -> Path:
    """Write the kubeconfig to `path` (mode 0600, as kubectl writes its own) and return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig_document(url, token=token, name=name, ca_data=ca_data)
    text = yaml.safe_dump(document, sort_keys=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return target
