"""The metric names a PromQL expression reads, and the names podfleet's code exports.

A small lexer, not a PromQL parser: it drops strings, label matchers, ranges, grouping
clauses and numbers, then keeps identifiers that are neither functions nor keywords. That is
enough for the queries in monitoring/ and fails loudly (an unknown name) rather than silently.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_client.metrics import MetricWrapperBase

KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2", "inf", "nan",
})
# Series every Prometheus has without podfleet exporting them.
BUILTIN_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric (or recording rule) names in ``expr``."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        rest = text[match.end():].lstrip()
        if rest.startswith("("):  # a function call
            continue
        if name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def exported_series() -> set[str]:
    """Every series name podfleet.monitoring.metrics defines, with histogram suffixes."""
    from podfleet.monitoring import metrics

    series: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                base = family.name
                if isinstance(value, Counter):
                    series |= {f"{base}_total"}
                elif isinstance(value, Histogram | Summary):
                    series |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
                elif isinstance(value, Gauge):
                    series.add(base)
    for name, value in vars(metrics).items():
        if name.endswith("_NAME") and isinstance(value, str):  # collected at scrape time
            series.add(value)
    return series
