"""The project cites only itself: every link and every file path its docs and code name is a
file of this repository (a renamed or moved file leaves no dangling reference behind)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from deploy_checks import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")
# A backticked relative path with a file extension: `docs/monitoring.md`, `scripts/lock.sh`.
PATH = re.compile(r"`([A-Za-z0-9_.][\w./-]*/[\w.-]+\.(?:md|py|sh|toml|ya?ml|json|txt|ini|lua))`")
# Paths named as examples of what a user writes or a container holds, not files of ours.
NOT_OURS = ("/", "~", "$", "http:", "https:", "mailto:", "#")


def tracked(*suffixes: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return [ROOT / name for name in listed if name.endswith(suffixes)]


def exists(cited: str, source: Path) -> bool:
    target = cited.split("#", 1)[0]
    return any((base / target).exists() for base in (source.parent, ROOT))


def test_every_markdown_link_to_a_file_resolves_inside_the_repository() -> None:
    dangling = [f"{doc.relative_to(ROOT)}: {target}"
                for doc in tracked(".md")
                for target in LINK.findall(doc.read_text())
                if not target.startswith(NOT_OURS) and not exists(target, doc)]
    assert dangling == []


def test_every_file_path_the_docs_and_code_name_is_in_the_repository() -> None:
    dangling = [f"{source.relative_to(ROOT)}: {cited}"
                for source in tracked(".md", ".py", ".sh", ".toml", ".yml", ".yaml")
                for cited in PATH.findall(source.read_text())
                if not cited.startswith(NOT_OURS) and not exists(cited, source)]
    assert dangling == []
