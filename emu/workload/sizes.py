"""Sizes and durations as people write them in scenarios (``"16GiB"``, ``"10ms"``).

Units are binary (1 KiB = 1024 B) because every quantity emu deals with is a number of pages;
a decimal "GB" would land between page boundaries. So ``K``/``M``/``G``/``T`` also mean the
binary units, as they do for ``qemu -m 16G``. Parsing is exact (no floating point): ``"1.5GiB"``
is allowed because it is a whole number of bytes, ``"0.1KiB"`` is not.
"""
from __future__ import annotations

import re
from fractions import Fraction

#: unit suffix (lower case) -> bytes
SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tib": 1 << 40,
}
#: unit suffix (lower case) -> nanoseconds
DURATION_UNITS = {"": 1, "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

SIZE_HELP = "a size such as 4096, '4KiB', '2MiB', '16GiB', '1TiB' (units B, KiB, MiB, GiB, TiB or K, M, G, T; binary)"
DURATION_HELP = "a duration such as 1000, '500ns', '20us', '10ms', '2s' (a bare number is nanoseconds)"

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([a-zµ]*)\s*$", re.IGNORECASE)
_FORMAT_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def _parse(text, units: dict[str, int], what: str, help_text: str) -> int:
    if isinstance(text, bool):
        raise ValueError(f"expected {help_text}, got a boolean ({text!r})")
    if isinstance(text, int):
        value = Fraction(text)
    elif isinstance(text, float):
        raise ValueError(f"expected {help_text}, got a float ({text!r}); write it as a string with a unit")
    elif isinstance(text, str):
        m = _NUMBER.match(text)
        if not m:
            raise ValueError(f"{text!r} is not {what}; allowed: {help_text}")
        unit = m.group(2).lower()
        if units is SIZE_UNITS and unit in ("kb", "mb", "gb", "tb"):
            raise ValueError(f"{text!r}: {m.group(2)!r} is ambiguous (decimal or binary?); "
                             f"write {m.group(2)[0].upper()}iB; allowed units: B, KiB, MiB, GiB, TiB, K, M, G, T")
        if unit not in units:
            allowed = ", ".join(u for u in _display_units(units))
            raise ValueError(f"{text!r} has an unknown unit {m.group(2)!r}; allowed units: {allowed}")
        value = Fraction(m.group(1)) * units[unit]
    else:
        raise ValueError(f"expected {help_text}, got {type(text).__name__} ({text!r})")
    if value < 0:
        raise ValueError(f"{text!r} is negative; allowed: {help_text}, zero or more")
    if value.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number of "
                         f"{'bytes' if units is SIZE_UNITS else 'nanoseconds'}; allowed: {help_text}")
    return int(value)


def _display_units(units: dict[str, int]) -> list[str]:
    if units is SIZE_UNITS:
        return ["B", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "T"]
    return ["ns", "us", "ms", "s"]


def parse_size(text: str | int) -> int:
    """Bytes in ``text``: an int, or a number with an optional binary unit (case-insensitive).

    >>> parse_size("16GiB"), parse_size("2m"), parse_size(4096), parse_size("1.5 KiB")
    (17179869184, 2097152, 4096, 1536)

    Raises ``ValueError`` saying what is allowed. Zero is accepted here; callers that need a
    positive size (the scenario schema) say so in their own message.
    """
    return _parse(text, SIZE_UNITS, "a size", SIZE_HELP)


def parse_duration(text: str | int) -> int:
    """Nanoseconds in ``text``: an int (nanoseconds) or a number with ``ns``, ``us``, ``ms``, ``s``.

    >>> parse_duration("10ms"), parse_duration("1.5us"), parse_duration(7)
    (10000000, 1500, 7)
    """
    return _parse(text, DURATION_UNITS, "a duration", DURATION_HELP)


def format_size(n: int, digits: int = 2) -> str:
    """``n`` bytes as text in the largest binary unit not above it: ``"16 GiB"``, ``"1.5 GiB"``.

    Values exact with at most ``digits`` decimals print that way (so ``parse_size`` reads them
    back exactly); others are rounded and keep all ``digits`` decimals (``"63.36 GiB"``,
    ``"1.00 MiB"``), the usual sign of a rounded figure in a report. Negative numbers
    (differences in a comparison) keep their sign.
    """
    n = int(n)
    sign = "-" if n < 0 else ""
    a = abs(n)
    if a < 1024:
        return f"{sign}{a} B"
    i = next(i for i, (_, u) in enumerate(_FORMAT_UNITS) if a >= u)
    if i > 0 and round(a / _FORMAT_UNITS[i][1], digits) >= 1024:
        i -= 1          # 1023.999 GiB rounds to 1024.00 GiB: say 1.00 TiB instead
    name, unit = _FORMAT_UNITS[i]
    if a % unit == 0:
        return f"{sign}{a // unit} {name}"
    if (a * 10**digits) % unit == 0:
        return f"{sign}{a / unit:.{digits}f}".rstrip("0").rstrip(".") + f" {name}"
    return f"{sign}{a / unit:.{digits}f} {name}"


def format_duration(ns: int) -> str:
    """``ns`` nanoseconds as text in the largest unit that divides it (``"10 ms"``), else rounded."""
    ns = int(ns)
    for name, unit in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if abs(ns) >= unit:
            if ns % unit == 0:
                return f"{ns // unit} {name}"
            return f"{ns / unit:.3f}".rstrip("0").rstrip(".") + f" {name}"
    return f"{ns} ns"
