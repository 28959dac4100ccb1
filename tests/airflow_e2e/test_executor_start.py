"""``PodFleetExecutor.start()`` refused because a live executor holds its id: the scheduler
stops with one logged line naming the holder, not a traceback, and ending the executor that
never started is quiet."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from podfleet.airflow.executor import PodFleetExecutor
from podfleet.executor.db import ExecutorRecord, make_engine
from podfleet.local.fleet import LocalFleet
from podfleet.local.waiting import wait_for

pytestmark = pytest.mark.airflow

JOB_ID = 4343


def _record_running(database_url: str, executor_id: str) -> bool:
    import sqlalchemy as sa

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(ExecutorRecord.state)
                                .where(ExecutorRecord.id == executor_id)).scalar() == "running"
    finally:
        engine.dispose()


def test_an_executor_id_in_use_stops_the_scheduler_with_one_line_naming_the_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with LocalFleet(workdir=tmp_path) as fleet:
        for name, value in fleet.env.items():
            monkeypatch.setenv(name, value)
        # Given a live executor in another process under the id of scheduler job 4343
        executor_id = f"airflow-{JOB_ID}"
        holder = subprocess.Popen(
            [sys.executable, "-m", "podfleet.cli", "executor"],
            env={**os.environ, **fleet.env, "PODFLEET_EXECUTOR_ID": executor_id},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: _record_running(fleet.database_url, executor_id), 60,
                     "the other executor to register")
            # When Airflow starts a PodFleetExecutor for the same job id
            executor = PodFleetExecutor()
            executor.job_id = JOB_ID
            with caplog.at_level(logging.INFO):
                with pytest.raises(SystemExit) as stopped:
                    executor.start()
                # ... and ends it, as its job runner does on the way out
                executor.end()
            still_held = _record_running(fleet.database_url, executor_id)
        finally:
            os.killpg(holder.pid, signal.SIGTERM)
            holder.wait(30)
        # Then the scheduler stops with one line that names the holder, no traceback
        assert f"executor id {executor_id!r} is in use by pid {holder.pid}" in str(
            stopped.value.code)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert errors[0].getMessage().startswith("podfleet executor not started: executor id")
        assert "\n" not in errors[0].getMessage() and errors[0].exc_info is None
        # ... and the holder's record was left alone
        assert still_held
        assert executor.fleet is None
