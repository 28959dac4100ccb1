"""Periodic chores of ``sync`` that keep tasks from waiting forever on something lost.

Tasks sent but still podless past ``queued_timeout_seconds`` (a lost launch message, a
launcher that died mid-batch) are relaunched or failed, and a watcher is started when none
holds its lease, since without one no pod event reaches any executor.
"""

from __future__ import annotations

import logging

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from podfleet.broker import WATCH_ACTOR_NAME, WATCH_QUEUE
from podfleet.contracts.naming import pod_name
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import Applied, record_change
from podfleet.executor.db import TaskInstance
from podfleet.executor.transitions import fail, relaunch
from podfleet.pods import task_namespace
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")


def expire_stuck_queued(sessions: sessionmaker[Session], settings: Settings,
                        executor_id: str, now: float) -> Applied | None:
    """Relaunch (new launch id) or fail tasks sent but still podless past the timeout.

    Returns what changed, for the caller to act on after commit (None: no timeout set).
    """
    timeout = settings.executor.queued_timeout_seconds
    if not timeout:
        return None
    relaunching = settings.executor.queued_timeout_action.value == "relaunch"
    result = Applied()
    with sessions.begin() as session:
        stuck = session.scalars(sa.select(TaskInstance).where(
            TaskInstance.executor_id == executor_id,
            TaskInstance.state == TaskState.QUEUED.value,
            TaskInstance.enqueued_at < now - timeout).with_for_update())
        for row in stuck:
            reason = f"queued {timeout:g}s without a pod"
            # The old launch's message may still create its pod: remove it if it does.
            result.pods_to_delete.append(
                (task_namespace(row.executor_config or {}, settings.kubernetes.namespace),
                 pod_name(row.key, row.launch_id), None))
            if relaunching:
                relaunch(row, now, reason)
            else:
                fail(row, now, f"{reason} (PODFLEET_QUEUED_TIMEOUT_ACTION=fail)")
            if row.task_state.is_terminal:
                record_change(result, row, executor_id)
            log.warning("task %s %s: %s", row.key, row.state, row.reason)
    return result


def ensure_watcher(redis_client: redis.Redis, broker: RedisBroker, keys: RedisKeys,
                   settings: Settings, executor_id: str) -> None:
    """Start a watcher when none holds the lease: one kick per lease period fleet-wide."""
    try:
        if redis_client.exists(keys.watcher_lease):
            return
        kick_key = keys.watcher_kick
        ttl_ms = max(1, int(settings.watcher.lease_seconds * 1000))
        if not redis_client.set(kick_key, executor_id, nx=True, px=ttl_ms):
            return  # another executor or worker kicked it within this lease period
        broker.enqueue(dramatiq.Message(
            queue_name=WATCH_QUEUE, actor_name=WATCH_ACTOR_NAME, args=(), kwargs={},
            options={}))
        log.info("no watcher holds the lease: sent a start message")
    except redis.RedisError as exc:
        log.warning("cannot check the watcher lease: %s", exc)
