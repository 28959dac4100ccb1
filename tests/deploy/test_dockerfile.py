"""The image runs as a non-root user and installs podfleet as a package (checked statically:
no Docker engine here; the wheel build it relies on is what `pip wheel .` does)."""

from __future__ import annotations

from deploy_checks import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = DOCKERFILE.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_final_stage_runs_as_a_non_root_user() -> None:
    instructions = _instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    users = [rest for word, rest in instructions[last_from:] if word == "USER"]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_podfleet_is_pip_installed_and_is_the_entrypoint() -> None:
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "pip wheel" in runs and "pip install" in runs
    assert ("ENTRYPOINT", '["podfleet"]') in _instructions()


def test_the_metrics_directory_is_configured_and_writable() -> None:
    assert "PODFLEET_METRICS_DIR=/run/podfleet/metrics" in DOCKERFILE
    assert "chown -R podfleet:podfleet /run/podfleet" in DOCKERFILE


def test_build_context_excludes_the_virtualenv_and_git() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
