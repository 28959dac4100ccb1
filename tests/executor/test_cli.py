"""``podfleet submit``, ``status`` and ``db upgrade`` on the embedded SQLite DB and real Redis."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from executor_support import SIGNING_KEY, rows

from podfleet.cli import main
from podfleet.executor.migrate import head_revision

DB_FLAGS = ("--dag-id", "etl", "--task-id", "load", "--run-id", "r1")


@pytest.fixture
def sqlite_env(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/podfleet.sqlite"
    monkeypatch.setenv("PODFLEET_DATABASE_URL", url)
    monkeypatch.setenv("PODFLEET_REDIS_URL", redis_url)
    monkeypatch.setenv("PODFLEET_SIGNING_KEY", SIGNING_KEY)
    return url


@pytest.fixture
def upgraded(sqlite_env: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["db", "upgrade"]) == 0
    assert f"at revision {head_revision()}" in capsys.readouterr().out
    return sqlite_env


def test_submit_before_db_upgrade_says_what_to_run(
        sqlite_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", *DB_FLAGS, "--", "echo", "hi"]) == 2
    assert "podfleet db upgrade" in capsys.readouterr().err


def test_submit_writes_tasks_and_status_counts_them(
        upgraded: str, capsys: pytest.CaptureFixture[str]) -> None:
    # When a fleet of 25 mapped tries is submitted
    assert main(["submit", *DB_FLAGS, "--count", "25", "--", "sh", "-c", "exit 0"]) == 0
    assert "submitted 25 task(s)" in capsys.readouterr().out
    # Then 25 rows exist, map indexes 0..24, with the command as given
    stored = rows(upgraded)
    assert sorted(r.map_index for r in stored) == list(range(25))
    assert stored[0].command == ["sh", "-c", "exit 0"]
    # And status reports them and the (stopped) submitting executor
    assert main(["status", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["by_state"] == {"queued": 25}
    (submitter,) = report["executors"]
    assert (submitter["state"], submitter["active_tasks"]) == ("stopped", 25)
    assert main(["status"]) == 0
    assert "queued" in capsys.readouterr().out


def test_status_labels_its_counts_as_pod_outcomes(
        upgraded: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given submitted tasks
    assert main(["submit", *DB_FLAGS, "--count", "2", "--", "true"]) == 0
    capsys.readouterr()
    # When status is asked for, as JSON and as text
    assert main(["status", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    # Then both say the states counted are how the pods ended, not the tasks' own outcome
    assert (report["counts"], report["total"]) == ("pod outcomes", 2)
    assert "task tries by pod outcomes: 2" in text


def test_submit_from_a_jsonl_file(upgraded: str, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(orjson.dumps(
        {"dag_id": "d", "task_id": f"t{i}", "run_id": "r", "command": ["true"]}).decode()
        for i in range(3)))
    assert main(["submit", "--from-file", str(tasks)]) == 0
    assert sorted(r.task_id for r in rows(upgraded)) == ["t0", "t1", "t2"]


@pytest.mark.parametrize("argv", [
    [*DB_FLAGS],                                                   # no command
    ["--dag-id", "etl", "--task-id", "load", "--", "true"],        # no run id
    [*DB_FLAGS, "--executor-config", "{not json", "--", "true"],   # config not JSON
    [*DB_FLAGS, "--executor-config", '{"bogus": 1}', "--", "true"],  # unknown config field
    ["--dag-id", "bad dag", "--task-id", "t", "--run-id", "r", "--", "true"],  # bad key
    [*DB_FLAGS, "--count", "0", "--", "true"],
], ids=["no-command", "no-run-id", "config-not-json", "config-unknown-field", "bad-dag-id",
        "count-zero"])
def test_bad_input_exits_2_and_writes_nothing(
        upgraded: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", *argv]) == 2
    assert capsys.readouterr().err.startswith("podfleet submit: ")
    assert rows(upgraded) == []


def test_a_bad_line_in_a_file_writes_nothing(upgraded: str, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"dag_id": "d", "task_id": "a", "run_id": "r", "command": ["true"]}\n'
                     '{"dag_id": "d", "task_id": "b", "run_id": "r", "command": []}\n')
    assert main(["submit", "--from-file", str(tasks)]) == 2
    assert rows(upgraded) == []


def test_db_upgrade_against_a_dead_postgresql_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from podfleet.local.ports import free_port

    url = f"postgresql+psycopg://podfleet:s3cret@127.0.0.1:{free_port()}/podfleet"
    monkeypatch.setenv("PODFLEET_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("podfleet db: cannot reach the metadata DB")
    assert "PODFLEET_DATABASE_URL" in err and "s3cret" not in err


def test_worker_check_never_prints_the_redis_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from podfleet.local.ports import free_port

    monkeypatch.setenv("PODFLEET_REDIS_URL", f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("PODFLEET_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("PODFLEET_KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    main(["worker", "--check"])
    captured = capsys.readouterr()
    assert "redis: FAILED (redis://:***@127.0.0.1:" in captured.out
    assert "s3cret" not in captured.out + captured.err


def test_a_postgresql_url_without_the_postgres_extra_names_the_extra(tmp_path: Path) -> None:
    # Given a process in which psycopg cannot be imported (the extra is not installed)
    import subprocess
    import sys

    program = ("import sys; sys.modules['psycopg'] = None\n"
               "from podfleet.cli import main\n"
               "sys.exit(main(['db', 'upgrade']))\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PODFLEET_DATABASE_URL": "postgresql+psycopg://podfleet@127.0.0.1/podfleet"}
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'podfleet[postgres]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_submit_refuses_an_invalid_queue_name_saying_why(
        upgraded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", *DB_FLAGS, "--queue", "my queue", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "queue 'my queue' is invalid: a queue name starts with a letter" in err
    assert rows(upgraded) == []


def test_submit_keeps_the_queue_and_priority_it_was_given(upgraded: str) -> None:
    assert main(["submit", *DB_FLAGS, "--queue", "etl", "--priority", "7", "--", "true"]) == 0
    (row,) = rows(upgraded)
    assert (row.queue, row.priority) == ("etl", 7)


@pytest.mark.parametrize(("queues", "expected"), [
    ("nightly", "--queues: 'nightly' is not a configured task queue (configured: default, "
                "etl; add it to PODFLEET_QUEUE_RATES"),
    ("etl,my queue", "--queues: 'my queue' is invalid: a queue name starts with a letter"),
])
def test_a_worker_for_a_queue_nobody_configured_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        queues: str, expected: str) -> None:
    monkeypatch.setenv("PODFLEET_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("PODFLEET_QUEUE_RATES", "etl=5")
    assert main(["worker", "--queues", queues]) == 2
    assert expected in capsys.readouterr().err


def test_status_shows_each_queue_and_why_it_waits(
        upgraded: str, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    import redis

    from podfleet.contracts.redis_keys import RedisKeys

    # Given 3 tasks waiting on the default queue, whose last launch permit was refused at
    # the pending cap a moment ago (as a launcher records it)
    assert main(["submit", *DB_FLAGS, "--count", "3", "--", "true"]) == 0
    client = redis.Redis.from_url(redis_url)
    client.hset(RedisKeys().admission_waiting, "default", f"pending {int(time.time() * 1000)}")
    client.close()
    capsys.readouterr()
    # When status is asked
    assert main(["status", "--json"]) == 0
    (queue,) = orjson.loads(capsys.readouterr().out)["queues"]
    # Then the queue shows its waiting tasks and the cap it waits at
    assert (queue["queue"], queue["waiting"], queue["pending"], queue["running"]) == (
        "default", 3, 0, 0)
    assert "PODFLEET_MAX_PENDING_PODS" in queue["why"]
    assert main(["status"]) == 0
    assert "waits at the cap on pods not yet Running" in capsys.readouterr().out
