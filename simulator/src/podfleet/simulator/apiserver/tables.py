"""Server-side printing: the meta.k8s.io/v1 `Table` kubectl asks for with `as=Table`.

kubectl renders whatever columns and cells the server sends, so `kubectl get pods` shows
NAME READY STATUS RESTARTS AGE exactly as each kind's `TablePrinter` computes it. A kind
that declares none prints NAME and AGE.
"""

from __future__ import annotations

import time
from calendar import timegm
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podfleet.simulator.store import Record

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE_COLUMN = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
    "priority": 0,
}


def column(
    name: str, description: str, *, kind: str = "string", priority: int = 0
) -> dict[str, Any]:
    """A column definition (priority 1 = shown by `kubectl get -o wide` only)."""
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": description,
        "priority": priority,
    }


def human_age(timestamp: str | None, now: float) -> str:
    """`5s`, `3m2s`, `4h`, `2d`: kubectl's HumanDuration, roughly."""
    if not timestamp:
        return "<unknown>"
    try:
        # Seconds are enough; MicroTime stamps (eventTime) carry a fraction after them.
        created = timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(now - created))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


Cells = Callable[[dict[str, Any], float], list[Any]]


def _no_cells(obj: dict[str, Any], now: float) -> list[Any]:
    return []


@dataclass(frozen=True)
class TablePrinter:
    """How a kind prints as a Table: its column definitions and the cells of one object."""

    columns: tuple[dict[str, Any], ...]
    #: One object (parsed) and the time now -> its row's cells, in `columns` order.
    cells: Cells

    @classmethod
    def named(
        cls,
        cells: Cells,
        before_age: tuple[dict[str, Any], ...] = (),
        after_age: tuple[dict[str, Any], ...] = (),
    ) -> TablePrinter:
        """NAME first, then the kind's own columns with AGE between `before_age` and
        `after_age` (where kubectl's printer for the kind puts it). `cells` gives the kind's
        own cells in that order; the name and age cells are added here."""
        split = len(before_age)

        def named_cells(obj: dict[str, Any], now: float) -> list[Any]:
            meta = obj.get("metadata", {})
            own = cells(obj, now)
            return [meta.get("name", ""), *own[:split],
                    human_age(meta.get("creationTimestamp"), now), *own[split:]]

        return cls((NAME_COLUMN, *before_age, AGE_COLUMN, *after_age), named_cells)


#: The printer of a kind that declares none: NAME and AGE.
NAME_AND_AGE = TablePrinter.named(_no_cells)


def table_row(
    printer: TablePrinter, obj: dict[str, Any], include_object: str, now: float
) -> dict[str, Any]:
    """One row; `object` is PartialObjectMetadata, the full object, or absent."""
    row: dict[str, Any] = {"cells": printer.cells(obj, now)}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    return row


def table(
    printer: TablePrinter,
    records: list[Record],
    *,
    resource_version: str,
    include_object: str,
    continue_token: str = "",
) -> dict[str, Any]:
    """A Table of `records` with the printer's columns."""
    now = time.time()
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": list(printer.columns),
        "rows": [table_row(printer, r.object(), include_object, now) for r in records],
    }


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table (kubectl get does)."""
    return "as=Table" in accept
