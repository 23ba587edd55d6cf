"""bpftrace's ``printf``: which format strings it accepts and what it prints for them.

Current bpftrace no longer hands the format to C's printf: ``src/format_string.cpp`` finds the
conversions with one regular expression and prints each argument through a C++ stream (the
version that has the ``0`` flag, added by bpftrace PR #4510 for issue #4501). emu copies the
resulting behaviour, which differs from C's printf in places a script can see:

* a ``%`` that does not form a conversion (``%y``, a trailing ``%``, ``%0-5d``: the flags must
  come in the order ``-``, ``+``, space, ``#``, ``0``) is ordinary text, not an error;
* the space flag is accepted and ignored; precision only affects floating-point conversions,
  so ``%.3s`` does not truncate and ``%.3d`` does not pad; ``*`` as width or precision is
  accepted, ignored, and takes no argument;
* padding fills the whole field: ``%05d`` of -5 is ``000-5``, ``%-05d`` of 5 is ``50000``,
  ``%#06x`` of 255 is ``000xff``; ``#`` adds ``0x``/``0X``/``0`` only to non-zero values;
* ``+`` adds a sign only to signed conversions (``d``, ``i``, and ``s`` of an integer);
* without a length modifier ``d``/``i`` print the value as a 32-bit ``int`` and ``u``/``o``/
  ``x``/``X`` as a 32-bit ``unsigned``; ``hh``/``h`` narrow to 8/16 bits; ``l``, ``ll``, ``j``,
  ``z``, ``t`` keep all 64 bits; any other run of ``hlLjzt`` letters counts as none;
* ``%p`` prints ``0x`` and lowercase hex (just ``0`` for zero); ``%c`` prints the low byte;
* ``%%`` (flags and width allowed) prints ``%``;
* ``e f g a`` (either case) and ``n`` are recognised but refused when checking.

Arguments are 64-bit integers (``int``) or strings (``str``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: one conversion, as bpftrace's FormatSpec regex reads it (group by group)
_SPEC_RE = re.compile(
    r"%(?P<minus>-?)(?P<plus>\+?)(?P<space> ?)(?P<hash>#?)(?P<zero>0?)"
    r"(?P<width>\*|[0-9]+)?(?:\.(?P<precision>\*|[0-9]+))?(?P<length>[hlLjzt]*)"
    r"(?P<conversion>[diouxXeEfFgGaAcspn%]|rh|rx|r)")

#: what each conversion accepts (FormatString::check); None: anything
_ACCEPTS = {"d": "int", "i": "int", "u": "int", "o": "int", "x": "int", "X": "int",
            "c": "int", "p": "int", "s": None, "r": "buffer", "rx": "buffer", "rh": "buffer"}
#: how bpftrace names emu's argument types in its messages
_TYPE_NAMES = {"int": "int64", "str": "string"}

#: bits a length modifier keeps; absent from here (none, or e.g. "L", "hl"): 32
_LENGTH_BITS = {"hh": 8, "h": 16, "l": 64, "ll": 64, "j": 64, "z": 64, "t": 64}


class FormatError(ValueError):
    """A format string that does not fit its arguments; ``offset`` is the index in the format
    string of the conversion at fault (its length when there are too many arguments)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class ConversionSpec:
    """One ``%...`` conversion. ``width``/``precision`` are None when absent or ``*``."""
    offset: int
    text: str
    left_align: bool
    show_sign: bool
    space: bool
    alternate: bool
    zero_pad: bool
    width: int | None
    precision: int | None
    length: str
    conversion: str


def parse_format(fmt: str) -> list:
    """Split a format string into literal text (``str``) and ``ConversionSpec`` pieces.

    ``%%`` joins the surrounding text as ``%``, so the specs are exactly the conversions that
    take an argument, in order.
    """
    pieces: list = []
    text = []
    last = 0
    for m in _SPEC_RE.finditer(fmt):
        text.append(fmt[last:m.start()])
        last = m.end()
        if m["conversion"] == "%":
            text.append("%")
            continue
        if "".join(text):
            pieces.append("".join(text))
        text = []
        pieces.append(ConversionSpec(
            offset=m.start(), text=m.group(0), left_align=bool(m["minus"]),
            show_sign=bool(m["plus"]), space=bool(m["space"]), alternate=bool(m["hash"]),
            zero_pad=bool(m["zero"]), width=_number(m["width"]),
            precision=_number(m["precision"]), length=m["length"],
            conversion=m["conversion"]))
    text.append(fmt[last:])
    if "".join(text):
        pieces.append("".join(text))
    return pieces


def _number(s: str | None) -> int | None:
    return None if s is None or s == "*" else int(s)


def _specs(fmt: str) -> list[ConversionSpec]:
    return [p for p in parse_format(fmt) if isinstance(p, ConversionSpec)]


def check_format(fmt: str, arg_types: list[str]) -> None:
    """Raise ``FormatError`` unless ``arg_types`` ("int" or "str") fit ``fmt``.

    Same checks, order and messages as bpftrace's ``FormatString::check``: the argument count
    first, then each conversion against its argument.
    """
    specs = _specs(fmt)
    for t in arg_types:
        if t not in _TYPE_NAMES:
            raise ValueError(f"argument type {t!r}: expected 'int' or 'str'")
    if len(arg_types) < len(specs):
        raise FormatError(f"not enough arguments for format string ({len(arg_types)} "
                          f"supplied, {len(specs)} expected)", specs[len(arg_types)].offset)
    if len(arg_types) > len(specs):
        raise FormatError(f"too many arguments for format string ({len(arg_types)} "
                          f"supplied, {len(specs)} expected)", len(fmt))
    for spec, t in zip(specs, arg_types):
        if spec.conversion not in _ACCEPTS:
            raise FormatError(f"unsupported format specifier: {spec.conversion}", spec.offset)
        wanted = _ACCEPTS[spec.conversion]
        if wanted is not None and wanted != t:
            raise FormatError(f"unsupported format specifier for type '{_TYPE_NAMES[t]}': "
                              f"{spec.conversion}", spec.offset)


def _wrap(v: int, bits: int, signed: bool) -> int:
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def _body(spec: ConversionSpec, arg) -> str:
    """The converted argument before padding."""
    conv = spec.conversion
    if conv in ("d", "i"):
        v = _wrap(arg, _LENGTH_BITS.get(spec.length, 32), True)
        return f"+{v}" if spec.show_sign and v >= 0 else str(v)
    if conv in ("u", "o", "x", "X"):
        v = _wrap(arg, _LENGTH_BITS.get(spec.length, 32), False)
        if conv == "u":
            return str(v)
        digits = format(v, {"o": "o", "x": "x", "X": "X"}[conv])
        if spec.alternate and v:
            digits = {"o": "0", "x": "0x", "X": "0X"}[conv] + digits
        return digits
    if conv == "c":
        return chr(arg & 0xFF)
    if conv == "p":
        v = arg & ((1 << 64) - 1)
        return f"0x{v:x}" if v else "0"
    # s (and r/rx/rh given a string): the value as text; an integer is signed 64-bit
    if isinstance(arg, int):
        v = _wrap(arg, 64, True)
        return f"+{v}" if spec.show_sign and v >= 0 else str(v)
    return arg


def _apply(spec: ConversionSpec, arg) -> str:
    body = _body(spec, arg)
    width = spec.width or 0
    if len(body) >= width:
        return body
    fill = ("0" if spec.zero_pad else " ") * (width - len(body))
    return body + fill if spec.left_align else fill + body


def format_printf(fmt: str, args: list) -> str:
    """What bpftrace prints for ``printf(fmt, *args)``; args are ints (int64) or strs.

    The arguments are checked first (``check_format``), so a mismatch raises ``FormatError``.
    """
    check_format(fmt, ["str" if isinstance(a, str) else "int" for a in args])
    out = []
    it = iter(args)
    for piece in parse_format(fmt):
        out.append(piece if isinstance(piece, str) else _apply(piece, next(it)))
    return "".join(out)
