"""``GET pods/{name}/log``: a container's log, answered as an API server and kubelet answer.

The checks come in the real order: the pod must exist (404), the container must be named
when the pod has several and must be one of its containers (400, the API server's
wording), a pod not yet on a node has an empty log (200, no body, as the API server then has
no kubelet to ask), and a container that has not run yet, or has no previous run for
``previous``, is refused with the kubelet's own 400 message (``container "base" in pod "x"
is waiting to start: ContainerCreating``).

What the log holds: in local mode the first container's real stdout and stderr (see
``../cluster/podlog.py``); otherwise a short simulated log written from the pod itself — the
command, any lines given in the ``sim.podfleet.io/log`` annotation, and how the container
ended — so it costs no memory per pod. ``sinceSeconds``, ``sinceTime``, ``tailLines``,
``timestamps``, ``limitBytes``, ``previous`` and ``follow`` work on both.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from podfleet.simulator.apiserver.errors import (
    FieldError,
    bad_request,
    forbidden,
    invalid,
    invalid_object,
    not_found,
)
from podfleet.simulator.apiserver.queryparams import query_bool, query_int
from podfleet.simulator.cluster.fate import LOG
from podfleet.simulator.cluster.podlog import ContainerLog
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import PODS, Record

Json = dict[str, Any]
Line = tuple[float, bytes]

#: How often a follower of a simulated log re-reads the pod when nothing has changed.
_FOLLOW_POLL_S = 1.0


@dataclass(frozen=True)
class LogOptions:
    """The query of a log request (``PodLogOptions``)."""

    container: str
    follow: bool
    previous: bool
    timestamps: bool
    since: float | None  # unix time: lines written before it are left out
    tail_lines: int | None
    limit_bytes: int | None


def parse_options(name: str, query: Mapping[str, str]) -> LogOptions:
    """Read and validate the query as the API server converts ``PodLogOptions``."""
    since_seconds = query_int(query, "sinceSeconds")
    since_time_text = query.get("sinceTime") or None
    tail_lines = query_int(query, "tailLines")
    limit_bytes = query_int(query, "limitBytes")
    causes: list[FieldError] = []
    if since_seconds is not None and since_seconds < 1:
        causes.append(invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if tail_lines is not None and tail_lines < 0:
        causes.append(invalid("tailLines", tail_lines, "must be greater than or equal to 0"))
    if limit_bytes is not None and limit_bytes < 1:
        causes.append(invalid("limitBytes", limit_bytes, "must be greater than 0"))
    if since_seconds is not None and since_time_text is not None:
        causes.append(
            forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified")
        )
    if causes:
        raise invalid_object("PodLogOptions", name, causes)
    since: float | None = None
    if since_seconds is not None:
        since = time.time() - since_seconds
    elif since_time_text is not None:
        since = _parse_time(since_time_text)
        if since is None:
            raise bad_request(f'parsing time "{since_time_text}" as RFC3339 failed')
    return LogOptions(
        container=query.get("container", ""),
        follow=query_bool(query, "follow"),
        previous=query_bool(query, "previous"),
        timestamps=query_bool(query, "timestamps"),
        since=since,
        tail_lines=tail_lines,
        limit_bytes=limit_bytes,
    )


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _stamp(at: float) -> bytes:
    """The kubelet's log timestamp: RFC 3339 with nine fractional digits, UTC."""
    whole = int(at)
    nanos = round((at - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    day = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{day}.{nanos:09d}Z ".encode()


# --------------------------------------------------------------------- checks


def choose_container(pod: Json, container: str) -> str:
    """The container the request means, or the API server's 400 when it cannot tell."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    all_names = [
        str(c.get("name", ""))
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
    ]
    if not container:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return str(containers[0].get("name", ""))
        if not containers:
            raise bad_request(f"a container name must be specified for pod {name}")
        raise bad_request(
            f"a container name must be specified for pod {name}, "
            f"choose one of: [{' '.join(all_names)}]"
        )
    if container not in all_names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container


def container_status(pod: Json, container: str) -> Json | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == container:
                result: Json = entry
                return result
    return None


def run_to_read(pod: Json, container: str, previous: bool) -> tuple[Json, bool]:
    """The state of the run whose log is asked for, or the kubelet's 400 when there is none.

    Returns the ``running`` or ``terminated`` state object of that run, and whether it is
    the run before the last restart (the kubelet serves it while the container waits).
    """
    name = pod["metadata"]["name"]
    entry = container_status(pod, container)
    if entry is None:
        raise bad_request(f'container "{container}" in pod "{name}" is not available')
    state = entry.get("state") or {}
    last = (entry.get("lastState") or {}).get("terminated")
    waiting, running, terminated = state.get("waiting"), state.get("running"), state.get(
        "terminated"
    )
    if previous:
        if not last or not last.get("containerID"):
            raise bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        return dict(last), True
    if running is not None:
        return dict(running), False
    if terminated is not None:
        if terminated.get("containerID") or terminated.get("startedAt"):
            return dict(terminated), False
        if last and last.get("containerID"):
            return dict(last), True
        raise bad_request(f'container "{container}" in pod "{name}" is terminated')
    if last:
        return dict(last), True
    if waiting is not None:
        reason = waiting.get("reason", "")
        if reason == "ErrImagePull":
            detail = "image can't be pulled"
        elif reason == "ImagePullBackOff":
            detail = "trying and failing to pull image"
        else:
            detail = reason
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {detail}')
    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


# --------------------------------------------------------------------- simulated logs


def simulated_lines(pod: Json, container: str, run: Json) -> list[Line]:
    """A plausible log of one run, written from the pod: its command, the lines of the
    ``sim.podfleet.io/log`` annotation (first container only) and how it ended."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    chosen = next((c for c in containers if c.get("name") == container), None)
    if chosen is None:
        for key in ("initContainers", "ephemeralContainers"):
            chosen = next((c for c in spec.get(key) or [] if c.get("name") == container), None)
            if chosen is not None:
                break
    chosen = chosen or {}
    started = _parse_time(run.get("startedAt")) or time.time()
    argv = [str(a) for a in (chosen.get("command") or []) + (chosen.get("args") or [])]
    first = (argv and shlex.join(argv)) or f"{chosen.get('image', '')} (image entrypoint)"
    lines: list[Line] = [(started, f"+ {first}\n".encode())]
    annotations = pod["metadata"].get("annotations") or {}
    text = annotations.get(LOG)
    if isinstance(text, str) and text and containers and containers[0].get("name") == container:
        for line in text.splitlines():
            lines.append((started, line.encode() + b"\n"))
    if "exitCode" in run:
        finished = _parse_time(run.get("finishedAt")) or started
        reason = run.get("reason") or ("Completed" if run["exitCode"] == 0 else "Error")
        lines.append((finished, f"sim: exited with code {run['exitCode']} ({reason})\n".encode()))
    return lines


# --------------------------------------------------------------------- serving


class PodLogReader:
    """Serves one log request over the runtime's store and (in local mode) the cluster."""

    def __init__(self, runtime: SimulatorRuntime, closing: asyncio.Event) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.closing = closing

    def _local_log(self, record: Record, container: str, previous: bool) -> ContainerLog | None:
        cluster = self.runtime.cluster
        lookup = getattr(cluster, "container_log", None)
        if lookup is None:
            return None
        spec = record.object().get("spec") or {}
        containers = spec.get("containers") or []
        if not containers or containers[0].get("name") != container:
            return None  # local mode runs the first container only
        found = lookup(record.namespace, record.name, record.uid, previous)
        return found if isinstance(found, ContainerLog) else None

    async def serve(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        record = self.store.get(PODS, namespace, name)
        if record is None:
            raise not_found(PODS, name)
        options = parse_options(name, request.query)
        pod = record.object()
        container = choose_container(pod, options.container)
        if not record.node_name:
            return web.Response(body=b"", content_type="text/plain")
        run, earlier_run = run_to_read(pod, container, options.previous)
        local = self._local_log(record, container, earlier_run)
        lines = local.lines() if local is not None else simulated_lines(pod, container, run)
        seen = local.appended if local is not None else len(lines)
        lines = _select(lines, options)
        if not options.follow:
            return web.Response(body=_render(lines, options, None), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        budget = [options.limit_bytes] if options.limit_bytes is not None else None
        if not await _send(response, lines, options, budget):
            return response
        if earlier_run:
            return response  # that run has ended: nothing more will come
        if local is not None:
            await self._follow_local(response, local, seen, options, budget)
        else:
            await self._follow_simulated(response, record, container, seen, options, budget)
        return response

    async def _follow_local(
        self,
        response: web.StreamResponse,
        log: ContainerLog,
        seen: int,
        options: LogOptions,
        budget: list[int] | None,
    ) -> None:
        while not self.closing.is_set():
            new = log.since(seen)
            seen = log.appended
            if new and not await _send(response, new, options, budget):
                return
            if log.closed and log.appended == seen:
                return
            await log.wait(_FOLLOW_POLL_S)

    async def _follow_simulated(
        self,
        response: web.StreamResponse,
        record: Record,
        container: str,
        seen: int,
        options: LogOptions,
        budget: list[int] | None,
    ) -> None:
        """Wait for the container to end, then send the lines its end added."""
        store = self.store
        while not self.closing.is_set():
            await store.wait_for_change(store.resource_version, _FOLLOW_POLL_S)
            current = store.get(PODS, record.namespace, record.name)
            if current is None or current.uid != record.uid:
                return
            if current.rv == record.rv:
                continue
            record = current
            pod = record.object()
            entry = container_status(pod, container) or {}
            state = entry.get("state") or {}
            terminated = state.get("terminated")
            if terminated is None and "running" in state:
                continue
            run = terminated or (entry.get("lastState") or {}).get("terminated")
            if run is None:
                continue
            lines = simulated_lines(pod, container, run)
            await _send(response, lines[seen:], options, budget)
            return


def _select(lines: list[Line], options: LogOptions) -> list[Line]:
    if options.since is not None:
        since = options.since
        lines = [line for line in lines if line[0] >= since]
    if options.tail_lines is not None:
        lines = lines[-options.tail_lines :] if options.tail_lines else []
    return lines


def _render(lines: list[Line], options: LogOptions, budget: list[int] | None) -> bytes:
    if options.timestamps:
        body = b"".join(_stamp(at) + text for at, text in lines)
    else:
        body = b"".join(text for _, text in lines)
    if budget is None and options.limit_bytes is not None:
        return body[: options.limit_bytes]
    if budget is not None:
        body = body[: budget[0]]
        budget[0] -= len(body)
    return body


async def _send(
    response: web.StreamResponse,
    lines: list[Line],
    options: LogOptions,
    budget: list[int] | None,
) -> bool:
    """Write lines to a follower; False once ``limitBytes`` is used up or the client left."""
    body = _render(lines, options, budget)
    try:
        if body:
            await response.write(body)
    except (ConnectionError, RuntimeError):
        return False
    return budget is None or budget[0] > 0
