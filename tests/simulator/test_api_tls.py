"""HTTPS and bearer-token auth, the simulator's default: kubectl, the official client, aiohttp.

Each client is configured only from what the simulator hands out (the kubeconfig with the
CA as certificate-authority-data and the token), as a user of a real cluster would be.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest
import urllib3
import yaml
from kubernetes import client, config

from podfleet.kube.aio import AsyncKubeClient
from podfleet.kube.client import KubeClient
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import ThreadSimulator, start_simulator
from podfleet.simulator.tls import TlsConfig


def test_the_simulator_serves_https_by_default(sim: ThreadSimulator) -> None:
    assert sim.url.startswith("https://127.0.0.1:")
    assert sim.tls


def test_the_kubeconfig_carries_the_ca_and_a_generated_token(
    sim: ThreadSimulator, kubeconfig: Path
) -> None:
    document = yaml.safe_load(kubeconfig.read_text())

    cluster = document["clusters"][0]["cluster"]
    assert cluster["server"] == sim.url
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == sim.ca_pem
    assert document["users"][0]["user"]["token"] == sim.token
    assert len(sim.token) >= 20


def test_a_request_without_the_token_gets_401(sim: ThreadSimulator) -> None:
    pool = urllib3.PoolManager(ca_certs=sim.ca_file)

    response = pool.request("GET", sim.url + "/api/v1/namespaces", retries=False)

    assert response.status == 401
    assert response.json()["reason"] == "Unauthorized"


def test_a_client_that_does_not_trust_the_ca_is_refused(sim: ThreadSimulator) -> None:
    pool = urllib3.PoolManager()  # the system's CAs only

    with pytest.raises(urllib3.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        pool.request("GET", sim.url + "/version", retries=False)


def test_another_simulators_ca_is_not_trusted(sim: ThreadSimulator) -> None:
    with start_simulator(SimulatorConfig()) as other:
        other_ca = other.ca_file
        pool = urllib3.PoolManager(ca_certs=other_ca, headers=sim.auth_headers())
        with pytest.raises(urllib3.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            pool.request("GET", sim.url + "/version", retries=False)


def test_kubectl_works_from_the_kubeconfig_alone(kubectl_bin: str, kubeconfig: Path) -> None:
    result = subprocess.run(
        [kubectl_bin, "--kubeconfig", str(kubeconfig), "get", "namespaces", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "namespace/default" in result.stdout.split()


def test_kubectl_with_a_wrong_token_is_unauthorized(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(kubeconfig.read_text())
    document["users"][0]["user"]["token"] = "wrong"
    wrong = tmp_path / "wrong-token"
    wrong.write_text(yaml.safe_dump(document))

    result = subprocess.run(
        [kubectl_bin, "--kubeconfig", str(wrong), "get", "pods"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "Unauthorized" in result.stderr


def test_the_official_client_works_from_the_kubeconfig(kubeconfig: Path) -> None:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        namespaces = client.CoreV1Api(api).list_namespace()
    finally:
        api.close()

    assert "default" in {ns.metadata.name for ns in namespaces.items}


def test_podfleets_aiohttp_transport_creates_over_tls(kubeconfig: Path, namespace: str) -> None:
    kube = KubeClient.from_config(kubeconfig=str(kubeconfig))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"tls-{uuid.uuid4().hex[:8]}"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }

    async def go() -> dict[str, object]:
        aio = AsyncKubeClient.from_client(kube)
        try:
            return await aio.create_pod(namespace, pod)
        finally:
            await aio.close()

    try:
        created = asyncio.run(go())
    finally:
        kube.close()

    assert created["metadata"]["name"] == pod["metadata"]["name"]  # type: ignore[index]


def test_a_plain_aiohttp_session_with_the_ca(sim: ThreadSimulator) -> None:
    context = sim.ssl_context()
    assert isinstance(context, ssl.SSLContext)

    async def go() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(
            sim.url + "/api/v1/nodes", ssl=context, headers=sim.auth_headers()
        ) as response:
            body = await response.json()
            return response.status, body["kind"]

    assert asyncio.run(go()) == (200, "NodeList")


def test_no_tls_serves_plain_http_and_accepts_any_token() -> None:
    with start_simulator(SimulatorConfig(tls=TlsConfig(enabled=False))) as plain:
        response = urllib3.request("GET", plain.url + "/api/v1/namespaces")
        url = plain.url
        ca = plain.ca_file

    assert url.startswith("http://")
    assert ca is None
    assert response.status == 200


def test_process_mode_serves_the_ca_its_parent_hands_out(tmp_path: Path) -> None:
    with start_simulator(SimulatorConfig(), mode="process") as child:
        api = child.api_client()
        try:
            nodes = client.CoreV1Api(api).list_node()
        finally:
            api.close()

    assert child.url.startswith("https://")
    assert len(nodes.items) > 0
