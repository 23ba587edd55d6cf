"""bpftrace's text and ``-f json`` output for maps and events, reproduced byte for byte.

A probe script's users compare emu's output with real bpftrace runs and feed the JSON to the
same tools, so every space, newline and sort order follows bpftrace's code rather than its
docs (the tutorial still shows pre-2019 histogram labels). Sources, repository
bpftrace/bpftrace:

* ``src/types_format.cpp`` (commit 4f00845e16): sorting (by value, by average, by total bucket
  count; min/max compared as *unsigned*), ``top`` and ``div`` (div 0 means 1; lhist ignores
  it; stats divides only the average), the rows a histogram prints (first to last non-zero
  bucket, counts read as 32-bit ints for that test), histogram labels and their K/M/G/T/P/E
  suffixes (hist: powers of 1024; lhist: only when ``step % 1024 == 0``).
* ``src/util/stats.h`` (commit 785be68162): average = total / count truncated toward zero,
  0 when count is 0.
* ``src/output/text.cpp`` and ``src/output/json.cpp`` (commit 6c004bf0d8): line shapes, the
  histogram row ``%-16s%8d |%-52s|`` with a float32 bar length, ``[v]`` one-value buckets,
  ``(..., x)`` and ``[x, ...)``, tuple keys without their parentheses, stats printed as a
  record ``{ .count = C, .average = A, .total = T }``, JSON keys with spaces removed, 64-bit
  numbers a double cannot hold written as strings, closed ``min``/``max`` bucket bounds.
* ``src/ast/passes/map_print.cpp`` (commit 9ff1cd8512) and ``src/bpftrace.cpp``: at exit, two
  empty lines, then every map in name order, each printed as ``print(@m)`` would.

Text functions return the exact text, newlines included. JSON functions that produce one
document return it without the newline (the caller writes one per document, as bpftrace's
``std::endl`` does); ``format_exit_maps_json`` returns whole lines. An empty string means
bpftrace prints nothing at all.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

KINDS = ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist", "int")
_M64 = (1 << 64) - 1
_BAR = 52                      # width of the '@' bar (text.cpp)
_SUFFIX = ("", "K", "M", "G", "T", "P", "E")


@dataclass
class MapData:
    """One map as the probe runtime hands it over for printing."""
    name: str        # "@" or "@name", as in the script
    kind: str        # one of KINDS; "int" is a plain assignment (@x = 5, @x = nsecs)
    entries: list    # [(key, value)]: key a tuple of int|str (() without keys); value an int,
                     # (count, total) for avg/stats, bucket counts for hist/lhist
    hist_bits: int = 0                          # k of hist(v, k)
    lhist: tuple[int, int, int] | None = None   # (min, max, step) of lhist


# --- integers as C++ sees them ---------------------------------------------------------------
def _s64(v: int) -> int:
    v &= _M64
    return v - (1 << 64) if v >> 63 else v


def _u64(v: int) -> int:
    return v & _M64


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _cdiv(a: int, b: int) -> int:
    """C++ integer division: truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _average(count: int, total: int) -> int:
    count, total = _s64(count), _s64(total)
    return _cdiv(total, count) if count > 0 else 0


# --- formatted values ------------------------------------------------------------------------
class _Record(NamedTuple):
    """A stats value: text.cpp prints it as a struct, json.cpp as an object."""
    fields: tuple


class _Label(NamedTuple):
    """A bucket boundary: a plain int64, or a "symbolic" one (text with a K/M/... suffix over a
    uint64 number). Only two adjacent plain labels make a one-value ``[v]`` row."""
    text: str
    value: int
    symbolic: bool


class _Hist(NamedTuple):
    lower: _Label | None   # start of the first printed bucket; None when it is the underflow
    labels: list           # end of each printed bucket; the open overflow bucket has none
    counts: list


def _plain(v: int) -> _Label:
    return _Label(str(v), v, False)


def _hist_label(i: int, k: int) -> _Label:
    """End of hist bucket ``i`` (hist_index_label / build_histogram in types_format.cpp)."""
    if i <= (2 << k):
        return _plain(i)
    n = 1 << k
    sub = i & (n - 1)
    power = (i >> k) - 1
    decade = power // 10
    shown = (1 << (power - 10 * decade)) * (n + sub)
    return _Label(f"{shown}{_SUFFIX[decade]}", _u64((1 << power) * (n + sub)), True)


def _lhist_label(number: int, step: int) -> _Label:
    """lhist boundary: K/M suffixes only when the step is a multiple of 1024."""
    if step % 1024:
        return _plain(number)
    if number == 0:
        text = "0"
    elif number % (1 << 20) == 0:
        text = f"{_cdiv(number, 1 << 20)}M"
    elif number % 1024 == 0:
        text = f"{_cdiv(number, 1024)}K"
    else:
        text = str(number)
    return _Label(text, _u64(number), True)


def _span(counts: list) -> tuple[int, int]:
    """First and last bucket with a count, -1 if none; counts are read as C ``int`` here."""
    nz = [i for i, c in enumerate(counts) if _s32(c) > 0]
    return (nz[0], nz[-1]) if nz else (-1, -1)


def _build_hist(counts: list, k: int, div: int) -> _Hist:
    first, last = _span(counts)
    if first < 0:
        return _Hist(None, [], [])
    lower = _hist_label(first - 1, k) if first else None
    return _Hist(lower, [_hist_label(i, k) for i in range(first, last + 1)],
                 [_u64(counts[i]) // div for i in range(first, last + 1)])


def _build_lhist(counts: list, lo: int, hi: int, step: int) -> _Hist:
    first, last = _span(counts)
    if first < 0:
        return _Hist(None, [], [])
    lower = _lhist_label(lo + (first - 1) * step, step) if first else None
    labels = [_lhist_label(lo + i * step, step) for i in range(first, last + 1)
              if lo + i * step <= hi]
    return _Hist(lower, labels, [_u64(counts[i]) for i in range(first, last + 1)])


def _value(m: MapData, value, div: int):
    """The value bpftrace formats for one entry (types_format.cpp ``format``)."""
    kind = m.kind
    if kind == "count":
        return _u64(value) // div
    if kind in ("sum", "min", "max", "int"):
        return _cdiv(_s64(value), div)
    if kind == "avg":
        return _cdiv(_average(*value), div)
    if kind == "stats":
        count, total = value
        return _Record((("count", _s64(count)), ("average", _cdiv(_average(count, total), div)),
                        ("total", _s64(total))))
    if kind == "hist":
        return _build_hist(list(value), m.hist_bits, div)
    if kind == "lhist":
        lo, hi, step = m.lhist
        return _build_lhist(list(value), lo, hi, step)
    raise ValueError(f"unknown map kind {kind!r} (expected one of {', '.join(KINDS)})")


# --- sorting ---------------------------------------------------------------------------------
def _key_order(key: tuple) -> tuple:
    """bpftrace's key order (sort_by_key): integers signed, strings bytewise, tuples by field."""
    return tuple((0, _s64(x)) if isinstance(x, int) else (1, str(x).encode()) for x in key)


def _sort_value(kind: str, value) -> int:
    if kind == "count":
        return _u64(value)
    if kind in ("sum", "int"):
        return _s64(value)
    if kind in ("min", "max"):
        return _u64(value)       # types_format.cpp compares min/max maps as uint64
    if kind in ("avg", "stats"):
        return _average(*value)
    return sum(_u64(c) for c in value)


def _selected(m: MapData, top: int, div: int) -> list:
    """Entries in print order with their formatted values.

    bpftrace sorts ascending with ``std::sort``, which leaves ties in the BPF map's own
    iteration order; emu breaks ties by key (bpftrace's key order) so output is reproducible.
    ``top`` keeps the last ``top`` entries, the largest.
    """
    if m.kind not in KINDS:
        raise ValueError(f"unknown map kind {m.kind!r} (expected one of {', '.join(KINDS)})")
    div = div or 1
    entries = sorted(m.entries, key=lambda e: _key_order(e[0]))
    entries.sort(key=lambda e: _sort_value(m.kind, e[1]))
    if top and len(entries) > top:
        entries = entries[len(entries) - top:]
    return [(key, _value(m, value, div)) for key, value in entries]


# --- text ------------------------------------------------------------------------------------
def _key_text(key: tuple) -> str:
    """A key as text.cpp prints it inside ``[...]``: a tuple loses its outer parentheses (so
    does any key whose text starts with '(' and ends with ')', as in bpftrace)."""
    s = str(key[0]) if len(key) == 1 else "(" + ", ".join(str(x) for x in key) + ")"
    if len(s) >= 2 and s[0] == "(" and s[-1] == ")":
        s = s[1:-1]
    return s


def _single(a: _Label, b: _Label) -> bool:
    return not a.symbolic and not b.symbolic and a.value + 1 == b.value


def _row_label(h: _Hist, i: int) -> str:
    labels = h.labels
    if i == 0:
        if h.lower is None:
            return f"(..., {labels[0].text})"
        if not labels:
            return f"[{h.lower.text}, ...)"
        start = h.lower
    elif i >= len(labels):
        return f"[{labels[i - 1].text}, ...)"
    else:
        start = labels[i - 1]
    if _single(start, labels[i]):
        return f"[{start.text}]"
    return f"[{start.text}, {labels[i].text})"


def _bar_width(count: int, most: int) -> int:
    """``(count / (float)max) * 52`` in float32, truncated (text.cpp). bpftrace divides 0 by 0
    when ``div`` zeroes every count; emu draws no bar there."""
    if most == 0:
        return 0
    return int(_f32(_f32(_f32(count) / _f32(most)) * _BAR))


def _hist_text(h: _Hist) -> str:
    most = max(h.counts, default=0)
    return "".join(f"{_row_label(h, i):<16}{c:>8} |{'@' * _bar_width(c, most):<{_BAR}}|\n"
                   for i, c in enumerate(h.counts))


def _value_text(v) -> str:
    if isinstance(v, _Record):
        return "{ " + ", ".join(f".{name} = {x}" for name, x in v.fields) + " }"
    return str(v)


def format_map(m: MapData, top: int = 0, div: int = 1) -> str:
    """What ``print(@m, top, div)`` prints, and what the exit dump prints for this map.

    ``@x: 5`` for a map without keys, one ``@x[key]: 5`` line per key, and for histograms a
    ``@x:`` (or ``@x[key]:``) line, the rows and an empty line. An empty map prints nothing.
    """
    if not m.entries:
        return ""
    out = []
    for key, v in _selected(m, top, div):
        head = f"{m.name}[{_key_text(key)}]" if key else m.name
        if isinstance(v, _Hist):
            out.append(f"{head}:\n{_hist_text(v)}\n")
        else:
            out.append(f"{head}: {_value_text(v)}\n")
    return "".join(out)


def format_exit_maps(maps: list) -> str:
    """Text printed when the run ends: two empty lines, then every map in name order."""
    if not maps:
        return ""
    return "\n\n" + "".join(format_map(m) for m in sorted(maps, key=lambda m: m.name.encode()))


# --- JSON ------------------------------------------------------------------------------------
class _Json:
    """Writes JSON the way json.cpp does, quirks included.

    Strings are escaped byte by byte from UTF-8; a byte of 0x80 or more is a negative ``char``
    on x86-64, so bpftrace writes it as ``\\uffffffXX``. Writing a ``\\u`` escape leaves the
    C++ stream in hex mode, so histogram counts written after it in the same document come out
    in hex; emu keeps that within one document (bpftrace's stream keeps it for the rest of the
    run).
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.hex = False

    def text(self) -> str:
        return "".join(self.parts)

    def raw(self, s: str) -> None:
        self.parts.append(s)

    def string(self, s: str) -> None:
        out = ['"']
        for b in s.encode("utf-8", "surrogateescape"):
            if b == 0x22:
                out.append('\\"')
            elif b == 0x5C:
                out.append("\\\\")
            elif b == 0x0A:
                out.append("\\n")
            elif b == 0x0D:
                out.append("\\r")
            elif b == 0x09:
                out.append("\\t")
            elif b < 0x20 or b >= 0x80:
                code = b if b < 0x20 else (b - 256) & 0xFFFFFFFF
                out.append(f"\\u{code:04x}")
                self.hex = True
            else:
                out.append(chr(b))
        out.append('"')
        self.parts.append("".join(out))

    def number(self, v: int) -> None:
        """An int64 or uint64 through ``std::to_string``, quoted when a double would change it."""
        if int(float(v)) != v:
            self.string(str(v))
        else:
            self.parts.append(str(v))

    def count(self, n: int) -> None:
        self.parts.append(format(n, "x") if self.hex else str(n))

    def label(self, lab: _Label) -> None:
        self.number(_u64(lab.value) if lab.symbolic else _s64(lab.value))

    def one_less(self, lab: _Label) -> None:
        if lab.symbolic:
            v = _u64(lab.value)
            self.number(-1 if v == 0 else _s64(v - 1))
        else:
            self.number(_s64(lab.value - 1))

    def hist(self, h: _Hist) -> None:
        self.raw("[")
        for i, c in enumerate(h.counts):
            self.raw("," if i else "")
            self.raw("{")
            start = h.lower if i == 0 else h.labels[i - 1]
            if start is not None:
                self.raw('"min": ')
                self.label(start)
                self.raw(", ")
            if i < len(h.labels):
                self.raw('"max": ')
                self.one_less(h.labels[i])
                self.raw(", ")
            self.raw('"count": ')
            self.count(c)
            self.raw("}")
        self.raw("]")

    def value(self, v) -> None:
        if isinstance(v, _Hist):
            self.hist(v)
        elif isinstance(v, _Record):
            self.raw("{")
            for i, (name, x) in enumerate(v.fields):
                self.raw(", " if i else "")
                self.string(name)
                self.raw(": ")
                self.number(x)
            self.raw("}")
        else:
            self.number(v)


def _key_json(key: tuple) -> str:
    """A JSON object key: the text key with every space removed (json.cpp)."""
    return _key_text(key).replace(" ", "")


def format_map_json(m: MapData, top: int = 0, div: int = 1) -> str:
    """The ``-f json`` document for ``print(@m, top, div)`` (no newline), or "" when bpftrace
    writes nothing: an empty map, except avg/stats maps, which write ``{}``."""
    stats = m.kind in ("avg", "stats")
    if not m.entries and not stats:
        return ""
    selected = _selected(m, top, div)
    kind = "stats" if stats else "hist" if m.kind in ("hist", "lhist") else "map"
    w = _Json()
    w.raw(f'{{"type": "{kind}", "data": {{')
    w.string(m.name)
    w.raw(": ")
    if selected and not selected[0][0]:
        w.value(selected[0][1])
    else:
        w.raw("{")
        for i, (key, v) in enumerate(selected):
            w.raw(", " if i else "")
            w.string(_key_json(key))
            w.raw(": ")
            w.value(v)
        w.raw("}")
    w.raw("}}")
    return w.text()


def format_exit_maps_json(maps: list) -> str:
    """JSON lines printed when the run ends: one document per map, in name order."""
    docs = (format_map_json(m) for m in sorted(maps, key=lambda m: m.name.encode()))
    return "".join(d + "\n" for d in docs if d)


def format_printf_json(text: str) -> str:
    """A formatted ``printf`` as ``-f json`` writes it (no newline)."""
    w = _Json()
    w.raw('{"type": "printf", "data": ')
    w.string(text)
    w.raw("}")
    return w.text()


def format_lost(n: int) -> str:
    """bpftrace's line for output events lost because the buffer was full."""
    return f"Lost {n} events\n"


def format_lost_json(n: int) -> str:
    """The lost-events document of ``-f json`` (no newline)."""
    return f'{{"type": "lost_events", "count": {n}, "data": {{"events": {n}}}}}'
