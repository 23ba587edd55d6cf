"""Records with valid types but invalid content: each is dropped, alone."""
from collections import namedtuple

from emu import hookimpl
from emu.records import PhaseKind, ProbePoint, Vendor

Named = namedtuple("Named", ["x"])


def make_state(layout, options):
    return Named(x=None)


@hookimpl
def emu_vendors():
    return [
        Vendor(name="dict_state", summary="state is no namedtuple", state=dict,
               make_state=make_state),
        Vendor(name="bad_point", summary="unnamespaced point", state=Named, make_state=make_state,
               points=(ProbePoint("flush", "no provider"),)),
    ]


@hookimpl
def emu_probe_points():
    return [ProbePoint("kvm:fault", "already the core's"), ProbePoint("nocolon", "bad name")]


@hookimpl
def emu_phase_kinds():
    return [PhaseKind("site_idle", "already site_extras'", {}, lambda *a: []),
            PhaseKind("bad_records_phase", "fine", {}, lambda *a: [])]
