"""Vendor selection: ``NAME[:opt=val,...]`` parsed and checked against the vendor's options."""
from __future__ import annotations

import difflib

from emu.errors import EmuError
from emu.records import Option, Vendor


def split_vendor_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"tdx:policy=lazy,pamt=dynamic"`` -> ``("tdx", {"policy": "lazy", "pamt": "dynamic"})``."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise EmuError(f"--vendor {spec!r}: no vendor name (write NAME or NAME:opt=val,...)")
    raw: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise EmuError(f"--vendor {spec!r}: {item!r} is not opt=val")
        raw[key.strip()] = value.strip()
    return name, raw


def find_vendor(name: str, vendors: dict[str, Vendor]) -> Vendor:
    if name in vendors:
        return vendors[name]
    allowed = ", ".join(sorted(vendors)) or "(none loaded)"
    close = difflib.get_close_matches(name, list(vendors), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise EmuError(f"unknown vendor {name!r}{hint}; loaded vendors: {allowed}")


def _convert(vendor: Vendor, opt: Option, value: str):
    where = f"option {vendor.name}:{opt.name}"
    try:
        if opt.type == "int":
            return int(value, 0)
        if opt.type == "float":
            return float(value)
        if opt.type == "bool":
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if opt.type == "size":
            from emu.workload.sizes import parse_size

            return parse_size(value)
        if opt.type == "choice":
            if value not in opt.choices:
                raise EmuError(f"{where}: {value!r} is not allowed; allowed: "
                               f"{', '.join(opt.choices)}")
            return value
    except EmuError:
        raise
    except ValueError:
        raise EmuError(f"{where}: {value!r} is not a valid {opt.type}") from None
    return value


def resolve_options(vendor: Vendor, raw: dict[str, str]) -> dict:
    """The vendor's options with defaults filled in and every given value checked."""
    known = {o.name: o for o in vendor.options}
    values = {o.name: o.default for o in vendor.options}
    for key, value in raw.items():
        if key not in known:
            allowed = ", ".join(f"{o.name} ({_describe(o)})" for o in vendor.options) or "none"
            raise EmuError(f"vendor {vendor.name!r} has no option {key!r}; options: {allowed}")
        values[key] = _convert(vendor, known[key], value)
    return values


def _describe(o: Option) -> str:
    if o.type == "choice":
        return "|".join(o.choices)
    return o.type


def parse_cost_overrides(items, names) -> dict[str, int]:
    """``["exit=2000", ...]`` -> ``{"exit": 2000}``, every name checked against ``names``."""
    out: dict[str, int] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise EmuError(f"--cost {item!r}: write NAME=NS")
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EmuError(f"--cost {item!r}: unknown cost {key!r}{hint}; "
                           f"costs: {', '.join(names)}")
        try:
            ns = int(value.strip(), 0)
        except ValueError:
            raise EmuError(f"--cost {item!r}: {value!r} is not a whole number of ns") from None
        if ns < 0:
            raise EmuError(f"--cost {item!r}: a cost cannot be negative")
        out[key] = ns
    return out
