"""What a setting is: one declaration (name, default, doc, parser) that everything else reads.

``Settings.from_env``, ``docs/configuration.md`` and Airflow's ``[podfleet]`` section are all
derived from these declarations, so a setting's name, default and meaning are written once.
A group of settings is a small frozen dataclass whose fields are declared with :func:`setting`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: The key under which :func:`setting` stores its :class:`Variable` in a field's metadata.
METADATA_KEY = "podfleet.setting"


class SettingsError(ValueError):
    """A PODFLEET_* variable has a value podfleet cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Parser(Generic[T]):
    """How a variable's text becomes a value; ``parse(name, text)`` raises SettingsError."""

    parse: Callable[[str, str], T]
    #: The option type Airflow shows: string, integer, float or boolean.
    kind: str = "string"
    #: An empty value means the default (rather than, say, an empty list).
    empty_is_default: bool = False


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``PODFLEET_*`` variable: its name, default text, meaning and parser."""

    name: str
    default: str
    doc: str
    parser: Parser[Any] = dataclasses.field(repr=False, compare=False)
    #: Holds a password or key: Airflow shows it as ``***``.
    secret: bool = False

    def read(self, environ: Mapping[str, str]) -> Any:
        """The parsed value of this variable in ``environ`` (its default when unset)."""
        text = environ.get(self.name, self.default).strip()
        if not text and self.parser.empty_is_default:
            text = self.default
        return self.parser.parse(self.name, text)


def setting(name: str, default: str, doc: str, parser: Parser[Any], *,
            secret: bool = False) -> Any:
    """A dataclass field read from the variable ``name``. The field has no Python default (the
    variable's default is text, parsed like any value), so groups are built by ``from_env``;
    a secret field is left out of the group's repr."""
    variable = Variable(name, default, doc, parser, secret)
    return dataclasses.field(repr=not secret, metadata={METADATA_KEY: variable})


def declared(group: type[Any]) -> Iterator[tuple[str, Variable]]:
    """``(field name, variable)`` of each field of ``group`` declared with :func:`setting`."""
    for field in dataclasses.fields(group):
        variable = field.metadata.get(METADATA_KEY)
        if isinstance(variable, Variable):
            yield field.name, variable
