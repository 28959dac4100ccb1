"""Where archived logs are stored: a local directory, or any fsspec filesystem.

The archive needs five operations (write a stream, read, list with ages, remove, check), so a
directory works with the standard library alone and fsspec stays an optional extra
(``pip install 'podfleet[logs]'`` plus the filesystem's own package, e.g. ``s3fs``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol


class ArchiveUnavailable(RuntimeError):
    """The configured archive cannot be used (fsspec or its filesystem package missing, …)."""


class LogStorage(Protocol):
    """Files addressed by ``/``-separated paths relative to the archive's root."""

    def write(self, path: str, chunks: Iterable[bytes]) -> int: ...

    def read(self, path: str) -> bytes | None: ...

    def listdir(self, path: str) -> list[tuple[str, float]]: ...

    def walk(self) -> Iterator[tuple[str, float]]: ...

    def remove(self, path: str) -> None: ...


class DirectoryStorage:
    """A local directory. Writes go to a temporary name first and are renamed into place,
    so a reader never sees half a log and a failed write leaves nothing behind."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, path: str) -> Path:
        return self.root.joinpath(*path.split("/"))

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        size = 0
        try:
            with open(partial, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        return size

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def listdir(self, path: str) -> list[tuple[str, float]]:
        """(name, modification time) of the files directly in ``path``; [] if it is absent."""
        try:
            entries = list(os.scandir(self._path(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [(e.name, e.stat().st_mtime) for e in entries
                if e.is_file() and not e.name.startswith(".")]

    def walk(self) -> Iterator[tuple[str, float]]:
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                full = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    yield full.relative_to(self.root).as_posix(), full.stat().st_mtime

    def remove(self, path: str) -> None:
        target = self._path(path)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        # Drop the folders the removal emptied, up to (not including) the root.
        parent = target.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


class FsspecStorage:
    """Any fsspec filesystem (``s3://bucket/prefix``, ``gs://``, ``memory://``, ``file://``)."""

    def __init__(self, url: str, **options: Any) -> None:
        try:
            import fsspec
        except ImportError:
            raise ArchiveUnavailable(
                f"log archive {url!r} needs fsspec: pip install 'podfleet[logs]' (and the "
                f"filesystem's package, such as s3fs for s3://)") from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise ArchiveUnavailable(f"log archive {url!r}: {exc}") from None
        self.root = str(root).rstrip("/")

    def _path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        size = 0
        target = self._path(path)
        parent = target.rsplit("/", 1)[0]
        with contextlib.suppress(Exception):
            self.fs.makedirs(parent, exist_ok=True)
        # Object stores make the object visible only when the upload completes (on close).
        with self.fs.open(target, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        return size

    def read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._path(path))
        except FileNotFoundError:
            return None
        return data

    def listdir(self, path: str) -> list[tuple[str, float]]:
        try:
            infos = self.fs.ls(self._path(path), detail=True)
        except FileNotFoundError:
            return []
        return [(str(i["name"]).rstrip("/").rsplit("/", 1)[-1], modified_at(i))
                for i in infos if i.get("type") == "file"]

    def walk(self) -> Iterator[tuple[str, float]]:
        try:
            found = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return
        prefix = self.root.lstrip("/") + "/"
        for name, info in found.items():
            relative = str(name).lstrip("/")
            relative = relative[len(prefix):] if relative.startswith(prefix) else relative
            yield relative, modified_at(info)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(path))


def modified_at(info: dict[str, Any]) -> float:
    """A file's modification time (Unix seconds) from an fsspec info dict, whichever key this
    filesystem uses; 0.0 when it reports none (such a file is never pruned as "old")."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.UTC)
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def open_storage(location: str) -> LogStorage:
    """A directory path is used as is; anything with ``://`` goes through fsspec."""
    if "://" in location:
        return FsspecStorage(location)
    return DirectoryStorage(location)
