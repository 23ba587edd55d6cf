"""Hooks returning records of the wrong type (and one that is fine)."""
from emu import hookimpl
from emu.records import ProbePoint


@hookimpl
def emu_vendors():
    return [ProbePoint("wrong:record", "not a vendor")]


@hookimpl
def emu_phase_kinds():
    return "burst"


@hookimpl
def emu_probe_points():
    return [ProbePoint("wrong:fine", "this one is valid and still loads")]
