"""Bad circumstances a command meets at start: each is one line naming what is wrong (the
executor id, the database), not a traceback, and nothing else is disturbed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeline_support import PODFLEET, Pipeline, submission, task_key

from podfleet.executor.cli.preflight import EXIT_BAD_INPUT


def _tasks(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"dag_id": "cli", "task_id": "t", "run_id": "r1",
                                "command": ["true"]}) + "\n")
    return path


def _submit(pipeline: Pipeline, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODFLEET, "submit", "--from-file", str(_tasks(tmp_path))],
                          env={**pipeline.env, **env}, capture_output=True, text=True,
                          timeout=120)


def test_an_executor_id_in_use_is_one_line_naming_it_and_since_when(
        pipeline: Pipeline, tmp_path: Path) -> None:
    # Given a live executor under an id
    live = pipeline.started_executor("exec-busy")
    live.submit_many([submission(task_key(0), {})])
    # When `podfleet submit` starts under the same id
    result = _submit(pipeline, tmp_path, PODFLEET_EXECUTOR_ID="exec-busy")
    # Then it refuses in one line: which id, who holds it since when, how to pick another
    assert result.returncode == EXIT_BAD_INPUT, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "executor id 'exec-busy' is in use by pid" in lines[0]
    assert " since " in lines[0] and "PODFLEET_EXECUTOR_ID" in lines[0]
    # ... and the live executor carries on, its task untouched and its own
    live.sync()
    assert [(r.executor_id, r.dag_id) for r in pipeline.rows()] == [("exec-busy", "pipeline")]


def test_a_read_only_metadata_db_is_one_line_naming_the_db(
        pipeline: Pipeline, tmp_path: Path) -> None:
    # Given the metadata DB reached through sessions that are read-only (as on a standby, or
    # with default_transaction_read_only set), its password in the URL
    url = (pipeline.database_url.replace("postgres@", "postgres:hunter2@", 1)
           + "?options=-c%20default_transaction_read_only%3Don")
    # When `podfleet submit` tries to write its tasks
    result = _submit(pipeline, tmp_path, PODFLEET_DATABASE_URL=url)
    # Then it says so in one line naming the DB (password hidden) and the cause
    assert result.returncode == EXIT_BAD_INPUT, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "the metadata DB postgresql+psycopg://postgres:***@" in lines[0]
    assert "is read-only" in lines[0] and "hunter2" not in lines[0]
    # ... and nothing was written
    assert pipeline.rows() == []
