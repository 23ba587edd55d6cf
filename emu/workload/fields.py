"""Typed fields: how a phase kind (and the ``[host]``/``[[vm]]`` tables) declares what it accepts.

A :class:`emu.records.PhaseKind` carries ``fields``: a mapping from field name to a
:class:`FieldSpec` (or a plain dict with the same keys, for plugins that prefer not to import
this module). The schema validates a scenario against these specs, fills in defaults and hands
the generator *parsed* values, so a generator never sees ``"2MiB"`` or a mistyped pattern name.
The same specs document the fields (``emu`` can print them), which is why every field needs a
``doc`` that says what real behaviour the knob changes.

Field types and the Python value a generator receives:

============ ========================================================== ===================
type         scenario spelling                                          value
============ ========================================================== ===================
``size``     ``"2MiB"``, ``4096`` (see :mod:`emu.workload.sizes`)        ``int`` bytes
``duration`` ``"10ms"``, ``1000`` (ns)                                   ``int`` nanoseconds
``int``      ``8``                                                      ``int``
``float``    ``0.5``, ``1``                                              ``float``
``bool``     ``true``                                                   ``bool``
``choice``   one of ``choices``                                         ``str``
``level``    ``"4K"``, ``"2M"``, ``"1G"`` (limited by ``choices``)      ``int`` (``LVL_*``)
``vm``       the name of a ``[[vm]]`` (a template for churn)            ``str`` (the name)
``range``    ``["1GiB", "2GiB"]``: a half-open ``[start, end)`` of sizes ``(start, end)`` bytes
``str``      any string                                                 ``str``
============ ========================================================== ===================

``default`` is :data:`REQUIRED` (the scenario must give it), ``None`` (optional: the generator
gets ``None`` and picks a per-VM meaning, such as "all of the VM") or a value written the way a
scenario would write it (``"4MiB"``), parsed with the same rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from emu.model.consts import LEVEL_NAMES
from emu.workload.errors import ScenarioError
from emu.workload.sizes import format_duration, format_size, parse_duration, parse_size

FIELD_TYPES = ("size", "duration", "int", "float", "bool", "choice", "level", "vm", "range", "str")
#: keys every phase has, handled by the schema itself; a phase kind may not declare them
RESERVED_PHASE_KEYS = ("kind", "vm", "repeat")

_LEVEL_SPELLINGS = {"4k": 0, "4kib": 0, "2m": 1, "2mib": 1, "1g": 2, "1gib": 2}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self):
        return "REQUIRED"


#: the ``default`` of a field the scenario must give
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class FieldSpec:
    """One field: its type, doc string, default and limits.

    ``min``/``max`` bound numbers, sizes and durations (inclusive). For ``size`` and
    ``duration`` fields ``min=None`` means "more than zero": a zero-byte touch or a zero-time idle
    is always a mistake in a scenario; give ``min=0`` where zero makes sense (an offset).
    ``multiple_of`` (bytes, sizes and ranges only; default 4096) is the granularity the model
    works in. ``bound`` caps a size (or a range's end) by guest memory: ``"vm"`` means every VM
    the phase targets, the name of a ``vm``-typed field of the same phase means that VM (churn's
    template). ``choices`` lists the allowed strings of a ``choice`` and the allowed levels of a
    ``level`` (default all of ``4K``, ``2M``, ``1G``).
    """

    type: str
    doc: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    multiple_of: int = 0
    bound: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @classmethod
    def coerce(cls, spec: "FieldSpec | Mapping[str, Any]") -> "FieldSpec":
        """A FieldSpec from a FieldSpec or a dict such as ``{"type": "size", "doc": ..., "default": "4MiB"}``."""
        if isinstance(spec, FieldSpec):
            return spec
        if isinstance(spec, Mapping):
            d = dict(spec)
            if "choices" in d:
                d["choices"] = tuple(d["choices"])
            return cls(**d)
        raise TypeError(f"a field spec must be a FieldSpec or a dict, not {type(spec).__name__}")

    # --- what the user may write -------------------------------------------------------------
    def allowed(self) -> str:
        """The allowed values, in words, for error messages and ``emu`` help."""
        t = self.type
        if t == "size" or t == "range":
            step = self.multiple_of or 4096
            base = "a size" if t == "size" else "[start, end) sizes, start < end"
            parts = [base, f"a multiple of {format_size(step)}"]
            if t == "size":
                lo = 1 if self.min is None else self.min
                if lo > 0:
                    parts.append(f"at least {format_size(max(lo, step))}")
                if self.max is not None:
                    parts.append(f"at most {format_size(int(self.max))}")
            return ", ".join(parts) + " (units B, KiB, MiB, GiB, TiB)"
        if t == "duration":
            text = "a duration such as '500ns', '20us', '10ms', '2s'"
            if self.max is not None:
                text += f", at most {format_duration(int(self.max))}"
            return text + (", more than 0" if self.min is None else "")
        if t in ("int", "float"):
            noun = "an integer" if t == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{noun} from {_num(self.min)} to {_num(self.max)}"
            if self.min is not None:
                return f"{noun} of at least {_num(self.min)}"
            if self.max is not None:
                return f"{noun} of at most {_num(self.max)}"
            return noun
        if t == "bool":
            return "true, false"
        if t in ("choice", "level"):
            return ", ".join(self.level_choices() if t == "level" else self.choices)
        if t == "vm":
            return "the name of a [[vm]]"
        return "a string"

    def level_choices(self) -> tuple[str, ...]:
        return self.choices or LEVEL_NAMES

    # --- parsing -------------------------------------------------------------------------------
    def parse(self, value: Any, place: str) -> Any:
        """``value`` as written in TOML -> the value a generator receives; ``ScenarioError`` if bad."""
        t = self.type
        if t == "size":
            return self._check_size(_size(value, place), place, value)
        if t == "duration":
            try:
                ns = parse_duration(value)
            except ValueError as e:
                raise ScenarioError(place, str(e)) from None
            lo = 1 if self.min is None else self.min
            if ns < lo:
                raise ScenarioError(place, f"{value!r} is too short", self.allowed())
            if self.max is not None and ns > self.max:
                raise ScenarioError(place, f"{value!r} is too long", self.allowed())
            return ns
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScenarioError(place, f"expected an integer, got {_describe(value)}", self.allowed())
            self._check_number(value, place)
            return value
        if t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ScenarioError(place, f"expected a number, got {_describe(value)}", self.allowed())
            if not math.isfinite(value):
                raise ScenarioError(place, f"{value!r} is not a finite number", self.allowed())
            self._check_number(value, place)
            return float(value)
        if t == "bool":
            if not isinstance(value, bool):
                raise ScenarioError(place, f"expected true or false, got {_describe(value)}", "true, false")
            return value
        if t == "choice":
            if not isinstance(value, str):
                raise ScenarioError(place, f"expected a string, got {_describe(value)}", self.allowed())
            for c in self.choices:
                if value.lower() == c.lower():
                    return c
            raise ScenarioError(place, f"{value!r} is not allowed", self.allowed())
        if t == "level":
            if not isinstance(value, str):
                raise ScenarioError(place, f"expected a level such as '2M', got {_describe(value)}",
                                    self.allowed())
            lvl = _LEVEL_SPELLINGS.get(value.strip().lower())
            if lvl is None or LEVEL_NAMES[lvl] not in self.level_choices():
                raise ScenarioError(place, f"{value!r} is not allowed", self.allowed())
            return lvl
        if t in ("vm", "str"):
            if not isinstance(value, str):
                raise ScenarioError(place, f"expected a string, got {_describe(value)}", self.allowed())
            return value
        if t == "range":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ScenarioError(place, f"expected a list of two sizes [start, end), got {_describe(value)}",
                                    self.allowed())
            start = self._check_size(_size(value[0], f"{place}[0]"), f"{place}[0]", value[0], zero_ok=True)
            end = self._check_size(_size(value[1], f"{place}[1]"), f"{place}[1]", value[1])
            if start >= end:
                raise ScenarioError(place, f"start {format_size(start)} is not below end {format_size(end)}",
                                    self.allowed())
            return (start, end)
        raise ValueError(f"unknown field type {t!r}; allowed: {', '.join(FIELD_TYPES)}")

    def _check_size(self, n: int, place: str, raw: Any, zero_ok: bool = False) -> int:
        step = self.multiple_of or 4096
        lo = (0 if zero_ok else 1) if self.min is None else self.min
        if n < lo:
            problem = f"{raw!r} is zero" if n == 0 else f"{raw!r} is too small"
            raise ScenarioError(place, problem, self.allowed())
        if self.max is not None and n > self.max:
            raise ScenarioError(place, f"{raw!r} is too large", self.allowed())
        if n % step:
            raise ScenarioError(place, f"{raw!r} ({n} bytes) is not a multiple of {format_size(step)}",
                                self.allowed())
        return n

    def _check_number(self, v, place: str) -> None:
        if self.min is not None and v < self.min:
            raise ScenarioError(place, f"{v!r} is too small", self.allowed())
        if self.max is not None and v > self.max:
            raise ScenarioError(place, f"{v!r} is too large", self.allowed())

    def default_value(self, place: str) -> Any:
        """The parsed default (``None`` stays ``None``); only call when not :attr:`required`."""
        return None if self.default is None else self.parse(self.default, place)


def _size(value: Any, place: str) -> int:
    try:
        return parse_size(value)
    except ValueError as e:
        raise ScenarioError(place, str(e)) from None


def _num(v) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    noun = kinds.get(type(value), type(value).__name__)
    return f"{noun} ({value!r})" if not isinstance(value, dict) else noun


def check_fields(owner: str, fields: Mapping[str, Any], reserved: tuple[str, ...] = ()) -> dict[str, FieldSpec]:
    """Normalise and check a field-spec mapping; ``ValueError`` names ``owner`` and the field.

    Run once per phase kind at setup, so that a plugin author learns about a bad default or a
    missing doc string from the plugin listing instead of from a user's scenario.
    """
    out: dict[str, FieldSpec] = {}
    for name, raw in fields.items():
        where = f"{owner} field {name!r}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}: a field name must be an identifier")
        if name in reserved:
            raise ValueError(f"{where}: {name!r} is reserved (every phase has it)")
        spec = FieldSpec.coerce(raw)
        if spec.type not in FIELD_TYPES:
            raise ValueError(f"{where}: unknown type {spec.type!r}; allowed: {', '.join(FIELD_TYPES)}")
        if not spec.doc or not spec.doc.strip():
            raise ValueError(f"{where}: needs a doc string saying what it changes")
        if spec.type == "choice" and not spec.choices:
            raise ValueError(f"{where}: a choice needs choices")
        if spec.type == "level" and any(c not in LEVEL_NAMES for c in spec.choices):
            raise ValueError(f"{where}: level choices must be among {', '.join(LEVEL_NAMES)}")
        if spec.bound is not None and spec.type not in ("size", "range"):
            raise ValueError(f"{where}: only size and range fields take a bound")
        if spec.bound is not None and spec.bound != "vm":
            other = fields.get(spec.bound)
            if other is None or FieldSpec.coerce(other).type != "vm":
                raise ValueError(f"{where}: bound must be 'vm' or the name of a vm-typed field")
        if not spec.required:
            try:
                spec.default_value(where)
            except ScenarioError as e:
                raise ValueError(f"{where}: bad default: {e}") from None
        out[name] = spec
    return out
