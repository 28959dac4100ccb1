"""A discovery-only API server, so `kubectl create --dry-run=client` can map podfleet's
manifests' kinds without a cluster.

kubectl's client-side dry run sends nothing but discovery requests (/api, /apis and each
group version's resource list); it needs to know that ConfigMap, Deployment, Role, … exist.
The simulator serves only the core resources podfleet itself uses (pods, nodes, namespaces,
events), so this stub answers discovery for the kinds the manifests contain. Any other path
answers 404, which kubectl's dry run never reaches.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# group version -> [(plural, kind, namespaced)]
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
           ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True),
           ("secrets", "Secret", True), ("pods", "Pod", True)],
    "apps/v1": [("deployments", "Deployment", True)],
    "rbac.authorization.k8s.io/v1": [("roles", "Role", True),
                                     ("rolebindings", "RoleBinding", True)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True)],
}


def _documents() -> dict[str, Any]:
    docs: dict[str, Any] = {
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": gv.split("/")[0],
             "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
             "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
            for gv in RESOURCES if "/" in gv]},
    }
    for gv, resources in RESOURCES.items():
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        docs[path] = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                      "resources": [
                          {"name": plural, "singularName": "", "namespaced": namespaced,
                           "kind": kind, "verbs": ["create", "get", "list", "watch", "delete",
                                                   "patch", "update"]}
                          for plural, kind, namespaced in resources]}
    return docs


class _Handler(BaseHTTPRequestHandler):
    documents = _documents()

    def do_GET(self) -> None:
        body = self.documents.get(self.path.split("?")[0])
        payload = json.dumps(body if body is not None else {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
            "reason": "NotFound"}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class DiscoveryStub:
    """Serve discovery on a free loopback port until ``close()``."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self) -> str:
        return json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "stub", "cluster": {"server": self.url}}],
            "users": [{"name": "stub", "user": {"token": "stub"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
            "current-context": "stub"})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
