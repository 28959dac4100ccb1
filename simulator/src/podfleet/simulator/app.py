"""Assembles one simulator: store, API, fault injection, admin routes and the simulated cluster.

`serve` runs it on an already bound socket until told to stop; the thread mode, process mode
and CLI all go through it, so they behave the same.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from podfleet.simulator.admin import setup_admin
from podfleet.simulator.apiserver.handler import build_api_app
from podfleet.simulator.apiserver.priorityclasses import add_system_classes
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.eventstore import EventStore
from podfleet.simulator.faults import FaultInjector
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import NAMESPACES, ObjectStore
from podfleet.simulator.tls import server_context

log = logging.getLogger(__name__)


def new_store(config: SimulatorConfig) -> ObjectStore:
    """A store holding the namespaces every cluster starts with."""
    # resourceVersions start at the current time in microseconds, so a restarted simulator
    # never reuses a version: a client resuming from an older run gets 410 Expired and
    # relists, as after an etcd compaction, instead of silently waiting for the counter.
    store = ObjectStore(
        history_events=config.history_window_events,
        history_seconds=config.history_window_seconds,
        start_rv=int(time.time() * 1_000_000),
    )
    for name in config.all_namespaces():
        store.create(
            NAMESPACES,
            {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
    add_system_classes(store)
    return store


def build_app(
    config: SimulatorConfig, loop: asyncio.AbstractEventLoop
) -> tuple[web.Application, SimulatorRuntime]:
    """The aiohttp application and the runtime it serves (cluster installed on startup)."""
    events = EventStore(limit=config.event_limit, ttl_s=config.event_ttl_seconds,
                        start_rv=int(time.time() * 1_000_000))
    runtime = SimulatorRuntime(config=config, store=new_store(config), loop=loop, events=events)
    runtime.faults = FaultInjector(config.faults, runtime)
    app = build_api_app(runtime, setup_extra=lambda a: setup_admin(a, runtime))

    async def start_cluster(_: web.Application) -> None:
        from podfleet.simulator.cluster import install_cluster

        runtime.cluster = await install_cluster(runtime)

    async def stop_cluster(_: web.Application) -> None:
        stop = getattr(runtime.cluster, "stop", None)
        if stop is not None:
            result = stop()
            if isinstance(result, Awaitable):
                await result

    app.on_startup.append(start_cluster)
    app.on_cleanup.append(stop_cluster)
    return app, runtime


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 = a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, *, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


async def serve(
    config: SimulatorConfig,
    sock: socket.socket,
    stop: asyncio.Event,
    on_ready: Callable[[SimulatorRuntime], None] | None = None,
) -> None:
    """Serve the API on `sock` until `stop` is set, then shut everything down."""
    loop = asyncio.get_running_loop()
    app, runtime = build_app(config, loop)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    ssl_context = server_context(config.tls) if config.tls.enabled else None
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    try:
        if on_ready is not None:
            on_ready(runtime)
        await stop.wait()
    finally:
        await runner.cleanup()
