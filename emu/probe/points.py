"""The probe points a script can attach to, and the value types their fields carry.

Points come from the ``emu_probe_points`` hook of the core and of every loaded plugin
(:class:`emu.records.ProbePoint`). A run attaches to the points of its own vendor (the core's
followed by the vendor's, the order of ``Tables.points``); a script may still name a point
another loaded vendor declares (it then simply does not fire in this run), so the same script
works across ``emu compare``'s vendors. A wildcard or name that matches no point any loaded
plugin declares is an error.

Field types: ``int``, ``bool`` and ``ns`` are integers. Every other type names a table of
names (a *symbolic* type): the value stays an integer in arithmetic and comparisons, and prints
as its name as a map key or with ``%s``; comparing it with a string literal compares names,
resolved when the script is checked.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from emu.model import consts as C
from emu.records import ProbePoint

SPECIAL = ("BEGIN", "END")
INTERVAL_UNITS = {"us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_INTERVAL = re.compile(r"^interval:(us|ms|s):([0-9][0-9_]*)$", re.IGNORECASE)
INTEGER_TYPES = ("int", "bool", "ns")


@dataclass(frozen=True)
class Ty:
    """A value's type: ``int``, ``str`` (a literal) or ``sym`` (an integer with a name table)."""

    kind: str
    table: str = ""

    def __str__(self) -> str:
        return self.table if self.kind == "sym" else self.kind


INT = Ty("int")
STR = Ty("str")


def sym(table: str) -> Ty:
    return Ty("sym", table)


def field_type(type_name: str) -> Ty:
    return INT if type_name in INTEGER_TYPES else sym(type_name)


@dataclass
class NameTables:
    """Names for each symbolic type: ``tables[type][value] -> name`` (dicts, sparse)."""

    tables: dict[str, dict[int, str]] = field(default_factory=dict)

    def name(self, table: str, value: int) -> str:
        names = self.tables.get(table, {})
        return names.get(int(value), str(int(value)))

    def value(self, table: str, name: str) -> int | None:
        for v, n in self.tables.get(table, {}).items():
            if n == name:
                return v
        return None

    def names(self, table: str) -> list[str]:
        return list(self.tables.get(table, {}).values())

    def intern(self, table: str, name: str) -> int:
        """The id of ``name`` in ``table``, adding it if new (string literals, probe names)."""
        names = self.tables.setdefault(table, {})
        for v, n in names.items():
            if n == name:
                return v
        v = len(names)
        names[v] = name
        return v


def core_name_tables() -> dict[str, dict[int, str]]:
    """The symbolic types of the core's points."""
    def enum(names):
        return dict(enumerate(names))
    return {
        "level": enum(C.LEVEL_NAMES), "cause": enum(C.CAUSE_NAMES), "op": enum(C.OP_NAMES),
        "owner": enum(C.OWNER_NAMES), "error": enum(C.ERROR_NAMES),
        "accept": enum(("ok", "exit_split", "already", "size_mismatch", "not_mapped",
                        "unsupported")),
    }


@dataclass
class PointCatalog:
    """The run's points (ids as the kernels emit them) and every loaded plugin's point names."""

    points: list[ProbePoint]
    known: set[str]
    names: NameTables

    @property
    def index(self) -> dict[str, int]:
        return {p.name: i for i, p in enumerate(self.points)}


def interval_ns(spec: str) -> int | None:
    """The period of an ``interval:UNIT:N`` probe in virtual ns (None if malformed)."""
    m = _INTERVAL.match(spec)
    if not m:
        return None
    n = int(m.group(2).replace("_", ""))
    return n * INTERVAL_UNITS[m.group(1).lower()] if n > 0 else None


def has_wildcard(spec: str) -> bool:
    return any(c in spec for c in "*?")


def match(spec: str, names) -> list[str]:
    """The names ``spec`` matches (bpftrace's ``*`` and ``?``; no other glob syntax)."""
    pattern = re.compile(fnmatch.translate(spec.replace("[", "[[]")))
    return [n for n in names if pattern.match(n)]
