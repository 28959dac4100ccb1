"""The aiohttp transport of pod creates: error mapping, TLS and auth wiring, against real servers.

The simulator runs in this process (thread mode) with faults injected through its admin
endpoint; TLS is a real TLS terminator in front of it, with a certificate made for the test;
auth comes from a kubeconfig, including an exec plugin, as the official client reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from podfleet.kube.aio import AsyncKubeClient, EventLoopThread
from podfleet.kube.client import KubeClient
from podfleet.kube.errors import (
    Invalid,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
)
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.faults import VerbFaults
from podfleet.simulator.server import RunningSimulator, start_simulator
from podfleet.simulator.tls import TlsConfig

TOKEN = "async-client-test-token"
E = TypeVar("E", bound=BaseException)


def a_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{uuid.uuid4().hex[:10]}"},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "base", "image": "busybox"}]}}


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    # Plain HTTP: this module puts its own TLS terminator in front of the simulator.
    sim = start_simulator(SimulatorConfig(token=TOKEN, tls=TlsConfig(enabled=False)),
                          mode="thread")
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    simulator.admin.clear_faults()
    yield simulator
    simulator.admin.clear_faults()


@pytest.fixture(scope="module")
def loop() -> Iterator[EventLoopThread]:
    thread = EventLoopThread("test-aio")
    yield thread
    thread.stop()


def write_kubeconfig(path: Path, server: str, user: dict[str, Any],
                     cluster: dict[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


def client_for(kubeconfig: Path, timeout_seconds: float = 5.0) -> AsyncKubeClient:
    kube = KubeClient.from_config(kubeconfig=str(kubeconfig), timeout_seconds=timeout_seconds)
    return AsyncKubeClient.from_client(kube)


def failed_create(loop: EventLoopThread, client: AsyncKubeClient, error: type[E]) -> E:
    """The error of type ``error`` that ``create`` raises."""
    with pytest.raises(error) as caught:
        create(loop, client)
    return caught.value


def create(loop: EventLoopThread, client: AsyncKubeClient) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        try:
            return await client.create_pod("default", a_pod())
        finally:
            await client.close()

    return loop.run(go())


# --- error mapping -------------------------------------------------------------------------

def test_a_created_pod_comes_back_as_the_servers_json(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    client = client_for(sim.write_kubeconfig(tmp_path / "kubeconfig"))

    pod = create(loop, client)

    assert pod["metadata"]["uid"]
    assert pod["metadata"]["namespace"] == "default"


def test_a_429_carries_its_retry_after(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    # Given an API server throttling every create, asking for 7 s
    sim.admin.set_faults(verbs={"create": VerbFaults(error_429=1.0)}, retry_after_s=7)
    client = client_for(sim.write_kubeconfig(tmp_path / "kubeconfig"))

    # When a pod is created
    error = failed_create(loop, client, TooManyRequests)

    # Then the error is the server's, retryable, with Retry-After parsed
    assert (error.status, error.reason, error.retry_after) == (429, "TooManyRequests", 7.0)
    assert error.retryable


def test_a_503_is_a_retryable_service_unavailable(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    sim.admin.set_faults(verbs={"create": VerbFaults(error_503=1.0)}, retry_after_s=2)
    client = client_for(sim.write_kubeconfig(tmp_path / "kubeconfig"))

    error = failed_create(loop, client, ServerError)

    assert (error.status, error.reason) == (503, "ServiceUnavailable")
    assert error.retryable


def test_a_422_is_final_and_keeps_the_servers_causes(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    client = client_for(sim.write_kubeconfig(tmp_path / "kubeconfig"))
    bad = a_pod()
    del bad["spec"]["containers"][0]["image"]

    async def go() -> dict[str, Any]:
        try:
            return await client.create_pod("default", bad)
        finally:
            await client.close()

    with pytest.raises(Invalid) as caught:
        loop.run(go())

    assert (caught.value.status, caught.value.reason) == (422, "Invalid")
    assert not caught.value.retryable
    assert any("image" in c.get("field", "") for c in caught.value.causes)


def test_a_server_that_does_not_answer_in_time_is_a_timeout(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    # Given an API server that holds creates for 1.5 s, and a client timeout of 0.3 s
    sim.admin.set_faults(verbs={"create": VerbFaults(timeout=1.0)}, timeout_mode="hold",
                         timeout_hold_s=1.5)
    client = client_for(sim.write_kubeconfig(tmp_path / "kubeconfig"), timeout_seconds=0.3)

    error = failed_create(loop, client, Unreachable)

    assert error.timed_out
    assert error.retryable


def test_a_refused_connection_is_a_connection_error(
        loop: EventLoopThread, tmp_path: Path) -> None:
    # Given a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}",
                                         {"token": TOKEN}))

    error = failed_create(loop, client, Unreachable)

    assert error.reason == "ConnectionError"
    assert error.retryable


def test_the_plain_client_reports_a_refused_connection_as_refused_not_as_a_timeout(
        tmp_path: Path) -> None:
    # urllib3 makes NewConnectionError a ConnectTimeoutError; "Timeout" would send an operator
    # looking for a slow server when nothing listens at all
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}",
                                  {"token": TOKEN})
    client = KubeClient.from_config(kubeconfig=str(kubeconfig))
    try:
        with pytest.raises(Unreachable) as caught:
            client.list_pods("default")
    finally:
        client.close()

    assert caught.value.reason == "ConnectionError"
    assert "cannot connect" in str(caught.value)
    assert caught.value.retryable


def test_the_plain_client_reports_a_slow_server_as_a_timeout(
        sim: RunningSimulator, tmp_path: Path) -> None:
    sim.admin.set_faults(verbs={"list": VerbFaults(timeout=1.0)}, timeout_mode="hold",
                         timeout_hold_s=1.5)
    client = KubeClient.from_config(kubeconfig=str(sim.write_kubeconfig(tmp_path / "kc")),
                                    timeout_seconds=0.3)
    try:
        with pytest.raises(Unreachable) as caught:
            client.list_pods("default")
    finally:
        client.close()

    assert caught.value.timed_out


def test_the_plain_client_tells_its_observer_the_verb_code_and_time_of_each_request(
        sim: RunningSimulator, tmp_path: Path) -> None:
    seen: list[tuple[str, int, float]] = []
    client = KubeClient.from_config(kubeconfig=str(sim.write_kubeconfig(tmp_path / "kc")),
                                    observe=lambda *call: seen.append(call))
    try:
        client.list_pods("default")
        assert client.get_pod("default", "no-such-pod") is None
        assert client.delete_pod("default", "no-such-pod") is False
    finally:
        client.close()
    assert [(verb, code) for verb, code, _ in seen] == [
        ("list", 200), ("get", 404), ("delete", 404)]
    assert all(seconds >= 0 for _, _, seconds in seen)


# --- auth and TLS ------------------------------------------------------------------------

def test_a_wrong_token_is_refused_with_401(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    client = client_for(write_kubeconfig(tmp_path / "kubeconfig", sim.url,
                                         {"token": "not-the-token"}))

    error = failed_create(loop, client, Unauthorized)

    assert error.status == 401


def test_a_token_from_an_exec_plugin_is_sent(
        sim: RunningSimulator, loop: EventLoopThread, tmp_path: Path) -> None:
    # Given a kubeconfig whose user gets its token from an exec credential plugin
    plugin = tmp_path / "credential.py"
    plugin.write_text("import json\nprint(json.dumps({'apiVersion': "
                      "'client.authentication.k8s.io/v1beta1', 'kind': 'ExecCredential', "
                      f"'status': {{'token': {TOKEN!r}}}}}))\n")
    client = client_for(write_kubeconfig(tmp_path / "kubeconfig", sim.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
        "args": [str(plugin)], "interactiveMode": "Never"}}))

    # When a pod is created, Then the server (which requires the token) accepted it
    assert create(loop, client)["metadata"]["uid"]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA)."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=podfleet-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


class TlsTerminator:
    """Accepts TLS on a free port and relays the plain bytes to ``target`` (the simulator)."""

    def __init__(self, target: str, cert: Path, key: Path) -> None:
        host, port = target.removeprefix("http://").rstrip("/").split(":")
        self.target = (host, int(port))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.loop = EventLoopThread("tls-terminator")
        self.server = self.loop.run(self._start())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self.context)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        self.loop.run(stop())
        self.loop.stop()


@pytest.fixture
def tls(sim: RunningSimulator, tmp_path: Path) -> Iterator[tuple[TlsTerminator, Path]]:
    try:
        cert, key = make_certificate(tmp_path)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    terminator = TlsTerminator(sim.url, cert, key)
    yield terminator, cert
    terminator.close()


def test_tls_is_verified_against_the_kubeconfigs_certificate_authority(
        tls: tuple[TlsTerminator, Path], loop: EventLoopThread, tmp_path: Path) -> None:
    # Given an HTTPS API server whose certificate only the kubeconfig's CA vouches for
    terminator, cert = tls
    client = client_for(write_kubeconfig(
        tmp_path / "kubeconfig", f"https://127.0.0.1:{terminator.port}", {"token": TOKEN},
        {"certificate-authority": str(cert)}))

    # When a pod is created, Then it went through TLS with the token
    assert create(loop, client)["metadata"]["uid"]


def test_tls_without_a_trusted_authority_is_refused(
        tls: tuple[TlsTerminator, Path], loop: EventLoopThread, tmp_path: Path) -> None:
    terminator, _ = tls
    client = client_for(write_kubeconfig(
        tmp_path / "kubeconfig", f"https://127.0.0.1:{terminator.port}", {"token": TOKEN}))

    error = failed_create(loop, client, Unreachable)

    assert "certificate" in error.message.lower()


def test_insecure_skip_tls_verify_is_honoured(
        tls: tuple[TlsTerminator, Path], loop: EventLoopThread, tmp_path: Path) -> None:
    terminator, _ = tls
    client = client_for(write_kubeconfig(
        tmp_path / "kubeconfig", f"https://127.0.0.1:{terminator.port}", {"token": TOKEN},
        {"insecure-skip-tls-verify": True}))

    assert create(loop, client)["metadata"]["uid"]


def test_the_event_loop_thread_refuses_work_once_stopped() -> None:
    thread = EventLoopThread("short-lived")
    assert thread.run(asyncio.sleep(0, result=json.dumps([1]))) == "[1]"

    thread.stop()

    with pytest.raises(RuntimeError):
        thread.run(asyncio.sleep(0))
