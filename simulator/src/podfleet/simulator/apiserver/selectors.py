"""Label and field selectors, parsed and matched as the API server does.

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`,
joined by commas. Field selectors: `field=v`, `field==v`, `field!=v` on the fields each kind
declares (`Kind.field_selectors`). A bad selector raises `ApiError` 400 BadRequest with the
real server's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from podfleet.kube.rules import label_key_errors, label_value_errors
from podfleet.simulator.apiserver.errors import ApiError, bad_request
from podfleet.simulator.store import Record

_SPECIAL = " \t\n\r,=!()<>"


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.op
        if op == "=":
            return labels.get(self.key) == self.values[0]
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op == "!=":
            return labels.get(self.key) != self.values[0]
        if op == "in":
            return self.key in labels and labels[self.key] in self.values
        if op == "notin":
            return self.key not in labels or labels[self.key] not in self.values
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if op == "gt" else number < bound


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, detail: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {detail}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def identifier(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            self.pos += 1
        return self.text[start : self.pos]

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            self.skip_ws()
            if self.pos >= len(self.text):
                if requirements:
                    raise self.error("found '', expected: identifier")
                return requirements
            requirements.append(self.requirement())
            self.skip_ws()
            if self.pos >= len(self.text):
                return requirements
            if self.peek() != ",":
                raise self.error(f"found '{self.peek()}', expected: ',' or 'end of string'")
            self.pos += 1

    def requirement(self) -> LabelRequirement:
        if self.peek() == "!":
            self.pos += 1
            self.skip_ws()
            key = self.identifier()
            self.check_key(key)
            return LabelRequirement(key, "!")
        key = self.identifier()
        if not key:
            raise self.error(f"found '{self.peek()}', expected: !, identifier, or 'end of string'")
        self.check_key(key)
        self.skip_ws()
        char = self.peek()
        if char in ("", ","):
            return LabelRequirement(key, "exists")
        if self.text.startswith("==", self.pos):
            self.pos += 2
            return LabelRequirement(key, "=", (self.single_value(),))
        if self.text.startswith("!=", self.pos):
            self.pos += 2
            return LabelRequirement(key, "!=", (self.single_value(),))
        if char == "=":
            self.pos += 1
            return LabelRequirement(key, "=", (self.single_value(),))
        if char in "<>":
            self.pos += 1
            self.skip_ws()
            value = self.identifier()
            try:
                int(value)
            except ValueError:
                raise self.error(
                    f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
                ) from None
            return LabelRequirement(key, "gt" if char == ">" else "lt", (value,))
        word = self.identifier()
        if word in ("in", "notin"):
            return LabelRequirement(key, word, self.value_set())
        raise self.error(f"found '{word or char}', expected: in, notin, =, ==, !=, gt, lt")

    def single_value(self) -> str:
        self.skip_ws()
        value = self.identifier()
        self.check_value(value)
        return value

    def value_set(self) -> tuple[str, ...]:
        self.skip_ws()
        if self.peek() != "(":
            raise self.error(f"found '{self.peek()}', expected: '('")
        self.pos += 1
        values: list[str] = []
        while True:
            self.skip_ws()
            value = self.identifier()
            self.check_value(value)
            values.append(value)
            self.skip_ws()
            char = self.peek()
            if char == ",":
                self.pos += 1
                continue
            if char == ")":
                self.pos += 1
                return tuple(values)
            raise self.error(f"found '{char}', expected: ',' or ')'")

    def check_key(self, key: str) -> None:
        errors = label_key_errors(key)
        if errors:
            raise self.error(f'<nil>: Invalid value: "{key}": {"; ".join(errors)}')

    def check_value(self, value: str) -> None:
        errors = label_value_errors(value)
        if errors:
            raise self.error(f'values[0][{value}]: Invalid value: "{value}": {"; ".join(errors)}')


Matcher = Callable[[Record], bool]


def parse_label_selector(text: str | None) -> list[LabelRequirement]:
    """Requirements of a label selector; [] (match everything) when empty."""
    if not text or not text.strip():
        return []
    return _LabelParser(text).parse()


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


def parse_field_selector(text: str | None, supported: frozenset[str]) -> list[FieldRequirement]:
    """Requirements of a field selector on the `supported` fields; [] when empty."""
    if not text or not text.strip():
        return []
    requirements: list[FieldRequirement] = []
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        for op, _equal in (("!=", False), ("==", True), ("=", True)):
            if op in term:
                field, value = term.split(op, 1)
                equal = _equal
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field = field.strip()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, equal, value.strip()))
    return requirements


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed label + field selector for one resource."""

    labels: tuple[LabelRequirement, ...]
    fields: tuple[FieldRequirement, ...]

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields

    def matches(self, record: Record) -> bool:
        if self.labels:
            labels = record.labels
            for requirement in self.labels:
                if not requirement.matches(labels):
                    return False
        return all((record.field(f.field) == f.value) == f.equal for f in self.fields)

    def namespace_pin(self) -> str | None:
        """A namespace fixed by `metadata.namespace=x` (lets a list skip other namespaces)."""
        for f in self.fields:
            if f.field == "metadata.namespace" and f.equal:
                return f.value
        return None

    def name_pin(self) -> str | None:
        """A name fixed by `metadata.name=x` (lets a list look up one object)."""
        for f in self.fields:
            if f.field == "metadata.name" and f.equal:
                return f.value
        return None


def parse_selector(
    label_selector: str | None, field_selector: str | None, supported: frozenset[str]
) -> Selector:
    return Selector(
        tuple(parse_label_selector(label_selector)),
        tuple(parse_field_selector(field_selector, supported)),
    )
