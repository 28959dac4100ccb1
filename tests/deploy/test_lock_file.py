"""requirements/lock.txt pins every dependency the parts' pyproject.toml files declare, within
its ranges, and this environment (made by scripts/bootstrap.sh with the lock as constraints)
is exactly it: what CI tests is what a fresh machine installs. Refresh with scripts/lock.sh."""

from __future__ import annotations

import tomllib
from importlib import metadata

from deploy_checks import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = ROOT / "requirements" / "lock.txt"
REFRESH = "refresh it: scripts/lock.sh (see its header)"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, equals, version = text.partition("==")
            assert equals, f"{line!r} in {LOCK.name} is not name==version"
            pins[canonicalize_name(name)] = version
    return pins


# Installed in a virtualenv of its own (scripts/airflow-venv.sh pins Airflow there): Airflow
# and the cncf.kubernetes provider need the 36.x client, the dev venv tests the current one.
OWN_VENV_EXTRAS = frozenset({"airflow"})


def declared() -> list[Requirement]:
    """Every requirement of every part's pyproject.toml and the root's: the dependencies and
    every extra's (but those installed in a virtualenv of their own), podfleet's own parts
    left out (they are installed from the checkout)."""
    texts: list[str] = []
    # providers/* (the Airflow provider) live in .venv-airflow, beside Airflow.
    for path in [ROOT / "pyproject.toml", *sorted(ROOT.glob("*/pyproject.toml"))]:
        project = tomllib.loads(path.read_text())["project"]
        texts.extend(project["dependencies"])
        for name, extra in project.get("optional-dependencies", {}).items():
            if name not in OWN_VENV_EXTRAS:
                texts.extend(extra)
    return [r for r in map(Requirement, texts) if not r.name.startswith("podfleet")]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for requirement in declared():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not for this platform (uvloop on Windows)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK.name}; {REFRESH}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, outside pyproject's {requirement}; "
            f"{REFRESH}")


def test_the_extras_of_declared_dependencies_are_pinned_too() -> None:
    # dramatiq[redis], redis[hiredis], psycopg[binary]: what the extra pulls in is locked
    pins = locked()
    for requirement in declared():
        for extra in requirement.extras:
            for text in metadata.requires(requirement.name) or []:
                needed = Requirement(text)
                if needed.marker is not None and needed.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(needed.name) in pins, (
                        f"{needed.name} (from {requirement}) is not in {LOCK.name}; {REFRESH}")


def test_this_environment_has_exactly_the_locked_versions() -> None:
    pins = locked()
    drift = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "(not installed)"
        if installed != version:
            drift[name] = f"locked {version}, installed {installed}"
    assert not drift, (f"this venv is not what {LOCK.name} pins: {drift}; re-run "
                       "scripts/bootstrap.sh, or " + REFRESH)
