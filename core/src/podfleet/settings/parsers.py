"""The parsers settings are declared with: each turns a variable's text into a value, or raises
a :class:`SettingsError` that names the variable and says what the value must be."""

from __future__ import annotations

import difflib
import math
import socket
from collections.abc import Callable, Collection, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from podfleet.contracts.queues import DEFAULT_QUEUE, queue_name_problem
from podfleet.settings.declaration import Parser, SettingsError

E = TypeVar("E", bound=StrEnum)


def invalid(errors: list[str], name: str, value: str) -> None:
    """Raise for the first of ``errors`` (a rule's complaints about ``value``), if any."""
    if errors:
        raise SettingsError(f"{name}={value!r} is invalid: {errors[0]}")


def text(*, empty_is_default: bool = False,
         check: Callable[[str, str], None] | None = None) -> Parser[str]:
    """The text as it is, after ``check(name, text)`` (which raises) when given."""
    def parse(name: str, raw: str) -> str:
        if check is not None:
            check(name, raw)
        return raw
    return Parser(parse, empty_is_default=empty_is_default)


def optional_text(*, check: Callable[[str, str], None] | None = None) -> Parser[str | None]:
    """The text, or None when it is empty; ``check(name, text)`` runs on non-empty text."""
    def parse(name: str, raw: str) -> str | None:
        if not raw:
            return None
        if check is not None:
            check(name, raw)
        return raw
    return Parser(parse)


def _number(kind: Callable[[str], Any], what: str, minimum: float | None,
            maximum: float | None) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        if (minimum is not None and value < minimum) or (
                maximum is not None and value > maximum):
            bounds = f" ≥ {minimum}" if minimum is not None else ""
            bounds += f" and ≤ {maximum}" if maximum is not None else ""
            raise SettingsError(f"{name} must be {what}{bounds}, got {raw!r}")
        return value
    return parse


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Parser[int]:
    """A whole number within the bounds; empty means the default."""
    return Parser(_number(int, "an integer", minimum, maximum), "integer",
                  empty_is_default=True)


def number(*, minimum: float | None = None, maximum: float | None = None) -> Parser[float]:
    """A finite number within the bounds; empty means the default."""
    return Parser(_number(float, "a number", minimum, maximum), "float", empty_is_default=True)


def optional_integer(*, minimum: int | None = None) -> Parser[int | None]:
    """A whole number ≥ ``minimum``, or None when empty (the default is derived elsewhere)."""
    parse = _number(int, "an integer", minimum, None)
    return Parser(lambda name, raw: parse(name, raw) if raw else None, "integer")


def boolean() -> Parser[bool]:
    """true/false, yes/no, on/off or 1/0; empty is false."""
    def parse(name: str, raw: str) -> bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {lowered!r}")
    return Parser(parse, "boolean")


def choice(enum: type[E]) -> Parser[E]:
    """A member of ``enum`` by value, case-insensitive, ``-`` read as ``_``."""
    def parse(name: str, raw: str) -> E:
        value = raw.lower().replace("-", "_")
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise SettingsError(f"{name} must be one of {allowed}, got {value!r}") from None
    return Parser(parse)


def one_of(allowed: tuple[str, ...]) -> Parser[str]:
    """Exactly one of ``allowed`` (case-sensitive, as Kubernetes spells them)."""
    def parse(name: str, raw: str) -> str:
        if raw not in allowed:
            listed = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
            raise SettingsError(f"{name} must be {listed}, got {raw!r}")
        return raw
    return Parser(parse)


def url(schemes: tuple[str, ...], *, check: Callable[[str, str], None] | None = None
        ) -> Parser[str]:
    """A URL starting with one of ``schemes``, then ``check(name, url)`` when given."""
    def parse(name: str, raw: str) -> str:
        if not raw.startswith(schemes):
            raise SettingsError(
                f"{name} must start with one of {', '.join(schemes)}, got {raw!r}")
        if check is not None:
            check(name, raw)
        return raw
    return Parser(parse)


def names(rule: Callable[[str], list[str]], *, wildcard: str | None = None
          ) -> Parser[tuple[str, ...]]:
    """A comma-separated list, each name valid by ``rule`` (its complaints); ``wildcard``
    alone is taken as it is."""
    def parse(name: str, raw: str) -> tuple[str, ...]:
        listed = tuple(n.strip() for n in raw.split(",") if n.strip())
        if listed != (wildcard,):
            for item in listed:
                invalid(rule(item), name, item)
        return listed
    return Parser(parse)


def members(known: Collection[str], what: str) -> Parser[frozenset[str]]:
    """A comma-separated set, each one of ``known`` (``what`` says what they are)."""
    def parse(name: str, raw: str) -> frozenset[str]:
        chosen = frozenset(r.strip() for r in raw.split(",") if r.strip())
        unknown = sorted(chosen - set(known))
        if unknown:
            hint = difflib.get_close_matches(unknown[0], known, n=1)
            raise SettingsError(f"{name}: {unknown[0]!r} is not {what}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        return chosen
    return Parser(parse)


def queue_name() -> Parser[str]:
    """A dramatiq queue name (:func:`podfleet.contracts.queues.queue_name_problem`)."""
    def parse(name: str, raw: str) -> str:
        invalid([p for p in [queue_name_problem(raw)] if p], name, raw)
        return raw
    return Parser(parse, empty_is_default=True)


def queue_rates() -> Parser[dict[str, float]]:
    """``queue=rate,…``: each queue name valid and listed once, each rate finite, ≥ 0."""
    def parse(name: str, raw: str) -> dict[str, float]:
        rates = _pairs(name, raw, "queue=rate (e.g. etl=50)", queue_name_problem,
                       what="rate", unit=" (creations per second)")
        if DEFAULT_QUEUE in rates:
            raise SettingsError(f"{name}: the default queue's rate is PODFLEET_LAUNCH_RATE")
        return rates
    return Parser(parse)


def queue_priority_classes(name_errors: Callable[[str], list[str]]
                           ) -> Parser[dict[str, str]]:
    """``queue=priorityclass,…``: each queue name valid (``default`` included) and listed
    once, each PriorityClass name passing ``name_errors`` (Kubernetes' rule for its names)."""
    def parse(name: str, raw: str) -> dict[str, str]:
        classes: dict[str, str] = {}
        for queue, class_name in _entries(name, raw, "queue=priorityclass (e.g. etl=high)",
                                          queue_name_problem):
            errors = name_errors(class_name)
            if errors:
                raise SettingsError(f"{name}: the PriorityClass of {queue!r}, "
                                    f"{class_name!r}, is invalid: {errors[0]}")
            classes[queue] = class_name
        return classes
    return Parser(parse)


def queue_clusters(name_problem: Callable[[str], str | None]
                   ) -> Parser[dict[str, tuple[str, ...]]]:
    """``queue=cluster|cluster,…``: each queue name valid (``default`` included) and listed
    once, each with one or more distinct cluster names (``name_problem`` says why one is not
    a name); whether they are configured is checked with the clusters."""
    def parse(name: str, raw: str) -> dict[str, tuple[str, ...]]:
        lists: dict[str, tuple[str, ...]] = {}
        for queue, value in _entries(name, raw, "queue=cluster|cluster (e.g. gpu=east|west)",
                                     queue_name_problem):
            clusters = tuple(c.strip() for c in value.split("|"))
            for cluster in clusters:
                problem = name_problem(cluster)
                if problem:
                    raise SettingsError(f"{name}: queue {queue!r}: {problem}")
            if len(set(clusters)) != len(clusters):
                raise SettingsError(f"{name}: queue {queue!r} names a cluster twice")
            lists[queue] = clusters
        return lists
    return Parser(parse)


def queue_weights() -> Parser[dict[str, float]]:
    """``queue=weight,…``: each queue name valid and listed once, each weight finite, ≥ 0
    (that not every queue weighs 0 is checked with PODFLEET_QUEUE_RATES, which names them)."""
    def parse(name: str, raw: str) -> dict[str, float]:
        return _pairs(name, raw, "queue=weight (e.g. etl=3)", queue_name_problem)
    return Parser(parse)


def namespace_caps(rule: Callable[[str], list[str]]) -> Parser[dict[str, int]]:
    """``namespace=count,…``: each namespace valid by ``rule`` and listed once, each count a
    whole number ≥ 1."""
    def problem(item: str) -> str | None:
        errors = rule(item)
        return errors[0] if errors else None
    return _caps("namespace=count (e.g. team-a=200)", problem)


def queue_caps() -> Parser[dict[str, int]]:
    """``queue=count,…``: each queue name valid and listed once, each count a whole number
    ≥ 1."""
    return _caps("queue=count (e.g. etl=100)", queue_name_problem)


def _caps(form: str, problem: Callable[[str], str | None]) -> Parser[dict[str, int]]:
    def parse(name: str, raw: str) -> dict[str, int]:
        caps = _pairs(name, raw, form, problem)
        for key, value in caps.items():
            if value != int(value) or value < 1:
                raise SettingsError(f"{name}: the cap of {key!r} must be a whole "
                                    f"number ≥ 1, got {value:g}")
        return {key: int(value) for key, value in caps.items()}
    return Parser(parse)


def _entries(name: str, raw: str, form: str,
             problem: Callable[[str], str | None]) -> Iterator[tuple[str, str]]:
    """The ``key=value`` items of a comma-separated list, in order, each with both sides,
    its key valid (``problem`` says why not) and listed once; the first fault raises naming
    ``name`` and the item (``form`` says what an item must look like)."""
    seen: set[str] = set()
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        key, equals, value_text = (part.strip() for part in item.partition("="))
        if not equals or not key or not value_text:
            raise SettingsError(f"{name}: {item!r} must be {form}")
        invalid([p for p in [problem(key)] if p], name, key)
        if key in seen:
            raise SettingsError(f"{name}: {key!r} is listed twice")
        seen.add(key)
        yield key, value_text


def _pairs(name: str, raw: str, form: str, problem: Callable[[str], str | None], *,
           what: str = "value", unit: str = "") -> dict[str, float]:
    """:func:`_entries` whose every value is a number, finite and ≥ 0 (else an error about
    "the ``what`` of" the key, ``unit`` after the bound)."""
    pairs: dict[str, float] = {}
    for key, value_text in _entries(name, raw, form, problem):
        try:
            value = float(value_text)
        except ValueError:
            value = -1.0
        if not math.isfinite(value) or value < 0:
            raise SettingsError(f"{name}: the {what} of {key!r} must be a finite number "
                                f"≥ 0{unit}, got {value_text!r}")
        pairs[key] = value
    return pairs


def ip_address() -> Parser[str]:
    """A numeric IPv4 or IPv6 address (no name lookups at start)."""
    def parse(name: str, raw: str) -> str:
        try:
            socket.getaddrinfo(raw, None, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise SettingsError(f"{name} must be an IP address, got {raw!r}") from None
        return raw
    return Parser(parse, empty_is_default=True)


def existing_file(name: str, path: str) -> None:
    """A check: ``path`` is a file."""
    if not Path(path).is_file():
        raise SettingsError(f"{name}: no such file {path!r}")


def _write_probe(folder: Path) -> str | None:
    """Why a file cannot be written in ``folder`` (tried, then removed), or None. A real
    write, not ``os.access``: root passes every permission check, not a read-only mount."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".podfleet-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def writable_dir(name: str, path: str) -> None:
    """A check: ``path`` is a directory this process can write in, or one it can create (its
    nearest existing parent takes a file). Probed with a real write, nothing left behind."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise SettingsError(f"{name}={path!r} is not a directory")
        problem = _write_probe(target)
        if problem:
            raise SettingsError(f"{name}={path!r} is not writable: {problem}")
        return
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    problem = _write_probe(parent) if parent.is_dir() else "not a directory"
    if problem:
        raise SettingsError(f"{name}={path!r} cannot be created: {str(parent)!r} is not "
                            f"writable ({problem})")
