"""The log archive: where each pod's log goes, reading it back, pruning it, in a directory
and through fsspec."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from podfleet.contracts.keys import TaskKey
from podfleet.logs.archive import LogArchive, log_path, tail_lines
from podfleet.logs.storage import ArchiveUnavailable, DirectoryStorage, FsspecStorage
from podfleet.settings import Settings, SettingsError

KEY = TaskKey("etl", "load", "scheduled__2026-01-01T00:00:00+00:00", 3, 2)


def test_the_path_names_every_part_of_the_key_and_the_launch_id() -> None:
    assert log_path(KEY, "abc123") == (
        "dag_id=etl/run_id=scheduled__2026-01-01T00:00:00%2B00:00/task_id=load/"
        "map_index=3/try=2/abc123.log")


def test_a_run_id_with_slashes_stays_inside_its_folder() -> None:
    key = TaskKey("etl", "load", "../../etc/passwd")
    assert log_path(key, "l1").split("/")[1] == "run_id=..%2F..%2Fetc%2Fpasswd"


def test_a_log_written_to_a_directory_reads_back_whole(tmp_path: Path) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path))
    size = archive.write(KEY, "launch-1", iter([b"one\n", b"two\n"]))
    found = archive.read(KEY, "launch-1")
    assert size == 8 and found is not None and found.data == b"one\ntwo\n"
    assert (tmp_path / log_path(KEY, "launch-1")).is_file()


def test_a_write_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path))

    def broken() -> object:
        yield b"half"
        raise ConnectionError("stream cut")

    with pytest.raises(ConnectionError):
        archive.write(KEY, "launch-1", broken())  # type: ignore[arg-type]
    assert archive.read(KEY, "launch-1") is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_without_a_launch_id_the_newest_log_of_the_try_is_read(tmp_path: Path) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path))
    archive.write(KEY, "zzz-first", [b"first\n"])
    old = time.time() - 60
    os.utime(tmp_path / log_path(KEY, "zzz-first"), (old, old))
    archive.write(KEY, "aaa-second", [b"second\n"])
    found = archive.read(KEY)
    assert found is not None and found.data == b"second\n"


def test_an_unknown_try_has_no_log(tmp_path: Path) -> None:
    assert LogArchive(DirectoryStorage(tmp_path)).read(KEY) is None
    assert LogArchive(DirectoryStorage(tmp_path / "missing")).read(KEY, "x") is None


def test_prune_deletes_only_logs_older_than_the_retention(tmp_path: Path) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path))
    old_key, new_key = TaskKey("etl", "old", "r1"), TaskKey("etl", "new", "r1")
    archive.write(old_key, "l1", [b"old"])
    archive.write(new_key, "l2", [b"new"])
    ten_days_ago = time.time() - 10 * 86_400
    os.utime(tmp_path / log_path(old_key, "l1"), (ten_days_ago, ten_days_ago))
    assert archive.prune(retention_days=7) == 1
    assert archive.read(old_key, "l1") is None
    assert archive.read(new_key, "l2") is not None
    # the emptied folders went too
    assert not (tmp_path / "dag_id=etl" / "run_id=r1" / "task_id=old").exists()


def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    archive = LogArchive(DirectoryStorage(tmp_path))
    archive.write(KEY, "l1", [b"x"])
    assert archive.prune(retention_days=0, now=time.time() + 10 ** 9) == 0
    assert archive.read(KEY, "l1") is not None


def test_an_fsspec_url_archive_writes_reads_and_prunes() -> None:
    archive = LogArchive.open(f"memory://podfleet-test-{uuid.uuid4().hex}/logs")
    archive.write(KEY, "l1", [b"in ", b"memory\n"])
    found = archive.read(KEY)
    assert found is not None and found.data == b"in memory\n"
    assert archive.prune(retention_days=1, now=time.time() + 2 * 86_400) == 1
    assert archive.read(KEY, "l1") is None


def test_a_file_url_goes_through_fsspec_to_the_same_layout(tmp_path: Path) -> None:
    archive = LogArchive.open(f"file://{tmp_path}/archive")
    assert isinstance(archive.storage, FsspecStorage)
    archive.write(KEY, "l1", [b"via fsspec\n"])
    assert (tmp_path / "archive" / log_path(KEY, "l1")).read_bytes() == b"via fsspec\n"


def test_an_unknown_url_scheme_is_reported_as_unavailable() -> None:
    with pytest.raises(ArchiveUnavailable, match="nosuchfs://x"):
        LogArchive.open("nosuchfs://x")


def test_tail_keeps_the_last_lines() -> None:
    data = b"a\nb\nc\n"
    assert tail_lines(data, 2) == b"b\nc\n"
    assert tail_lines(data, 0) == b""
    assert tail_lines(data, None) == data
    assert tail_lines(data, 10) == data


def test_settings_default_to_a_local_directory_kept_30_days() -> None:
    settings = Settings.from_env({})
    assert (settings.logs.archive, settings.logs.retention_days) == (".podfleet/logs", 30.0)


def test_settings_turn_archiving_off() -> None:
    assert Settings.from_env({"PODFLEET_LOG_ARCHIVE": "off"}).logs.archive is None


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PODFLEET_LOG_RETENTION_DAYS", "-1", "PODFLEET_LOG_RETENTION_DAYS must be a number"),
    ("PODFLEET_LOG_RETENTION_DAYS", "week", "PODFLEET_LOG_RETENTION_DAYS must be a number"),
    ("PODFLEET_LOG_ARCHIVE", "s 3://bucket", "PODFLEET_LOG_ARCHIVE must be a directory"),
])
def test_bad_log_settings_are_rejected_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: value})
