"""The plugin contract: every hook an ``emu`` plugin may implement.

The design rule: hooks run **once, at setup**, and *return records* (``emu.records``); nothing
calls a hook per event. A pluggy call costs about 1.6 µs, while the jitted driver loop spends a
few nanoseconds per step, so one hook call per fault would make pluggy the emulator. Instead
``emu.plugins.load_plugins`` calls each hook of each plugin once, validates what comes back, and
the engine compiles the plain Python functions those records carry into the generated loop.

A plugin is a module with functions marked by :data:`emu.hookimpl`, found through the ``emu``
entry-point group, ``--plugin FILE_OR_MODULE``, or the built-in list
``emu.plugins.DEFAULT_PLUGINS`` (built-in features use the same hooks as everyone else). An
implementation may take fewer arguments than its spec, never more (pluggy checks this when the
plugin is registered). Each hook returns a list; return an empty list (or nothing) when the
plugin has nothing of that kind. Records are validated by name and type; a broken record is
dropped and reported by ``emu plugins``, and the rest of the plugin still loads.
"""
from __future__ import annotations

import pluggy

from emu.records import PhaseKind, ProbePoint, ReportSection, Vendor

hookspec = pluggy.HookspecMarker("emu")


# -------------------------------------------------------------------------------------------------
# Vendors
# -------------------------------------------------------------------------------------------------


@hookspec
def emu_vendors() -> list[Vendor]:
    """Return the vendors this plugin provides (TDX, SEV-SNP, the plain baseline, ...).

    Called once when plugins are loaded. A vendor is only data plus plain Python functions: the
    ``kernels`` it maps to ``emu.model.vendor_ops`` points are compiled by the engine, never
    called through pluggy. Each vendor is checked: its ``state`` must be a ``namedtuple`` class
    (numba dispatches on it), its ``kernels`` must take exactly the parameters of their point
    (``emu.model.vendor_ops.kernel_problems``), its own probe points must be named
    ``provider:name``, and its name must not be taken by an earlier plugin.

    :returns: a list of :class:`emu.records.Vendor`.

    **Example:**

    .. code-block:: python

        from collections import namedtuple

        import numpy as np

        from emu import hookimpl
        from emu.model import consts
        from emu.records import Vendor

        ToyState = namedtuple("ToyState", ["maps"])


        def make_state(layout, options):
            return ToyState(maps=np.zeros(1, dtype=np.int64))


        def gmem_max_mapping_level(V, S, vm, gfn, pfn):
            return consts.LVL_4K        # this toy firmware only tracks 4K pages


        @hookimpl
        def emu_vendors():
            return [Vendor(name="toy", summary="4K-only private memory", state=ToyState,
                           make_state=make_state,
                           kernels={"gmem_max_mapping_level": gmem_max_mapping_level},
                           private_memory=True)]
    """


@hookspec
def emu_cost_overrides(vendor: str) -> dict[str, int] | None:
    """Return cost-table entries (virtual ns) to use instead of ``vendor``'s defaults.

    Called once per loaded vendor when plugins are loaded, so a site plugin can carry numbers
    measured on its own machines. Overrides from the command line (``--cost NAME=NS``) still win
    over these. Two plugins overriding the same entry of the same vendor is reported as a problem
    and the first one loaded is kept.

    :param vendor: the name of a loaded vendor, e.g. ``"tdx"``.
    :returns: a mapping of cost name to nanoseconds, or ``None`` for no overrides.

    **Example:**

    .. code-block:: python

        from emu import hookimpl

        MEASURED = {"tdx": {"seamcall_page_aug": 2900, "seamcall_mem_page_demote": 61000}}


        @hookimpl
        def emu_cost_overrides(vendor):
            return MEASURED.get(vendor)
    """


# -------------------------------------------------------------------------------------------------
# Probe points
# -------------------------------------------------------------------------------------------------


@hookspec
def emu_probe_points() -> list[ProbePoint]:
    """Return probe points emitted by code outside any vendor.

    Called once when plugins are loaded. The core declares its own points (``kvm:fault``,
    ``mm:alloc``, ...) through this hook in ``emu.builtin_points``; a vendor's points belong in
    its :class:`~emu.records.Vendor` record instead, because they exist only when that vendor
    runs. Names are ``provider:name`` and must be unique. Probe scripts (``emu run -e``) attach
    to points by these names and read the fields as ``args.NAME``; a field with ``names``
    prints by name and compares with names (``/args.result == "skipped"/``).

    :returns: a list of :class:`emu.records.ProbePoint`.

    **Example:**

    .. code-block:: python

        from emu import hookimpl
        from emu.records import Field, ProbePoint


        @hookimpl
        def emu_probe_points():
            return [ProbePoint("khugepaged:scan", "khugepaged looked at one 2M range.",
                               (Field("gfn"), Field("collapsed", "bool"),
                                Field("result", "scan_result", "why it stopped",
                                      ("collapsed", "skipped", "busy"))))]
    """


# -------------------------------------------------------------------------------------------------
# Workloads
# -------------------------------------------------------------------------------------------------


@hookspec
def emu_phase_kinds() -> list[PhaseKind]:
    """Return workload phase kinds a scenario may name (``[[phase]] kind = "..."``).

    Called once when plugins are loaded. The generator turns a phase into operation arrays in
    plain Python/numpy before the run starts, deterministically from the seed it is given.
    Names must be unique across plugins; the built-in kinds live in ``emu.builtin_phases``.

    :returns: a list of :class:`emu.records.PhaseKind`.

    **Example:**

    .. code-block:: python

        from emu import hookimpl
        from emu.records import PhaseKind


        def generate(phase, scenario, rng):
            ...                     # return the operations of this phase


        @hookimpl
        def emu_phase_kinds():
            return [PhaseKind(name="balloon", doc="Inflate a balloon: convert pages to shared.",
                              fields={"pages": int, "vm": int}, generate=generate)]
    """


# -------------------------------------------------------------------------------------------------
# Reports
# -------------------------------------------------------------------------------------------------


@hookspec
def emu_report_sections() -> list[ReportSection]:
    """Return report sections: named groups of rows computed from a finished run.

    Called once when plugins are loaded. Each section's ``render(data)`` receives a run's result
    dictionary (``docs/result-json.md``; a vendor's own figures are under
    ``data["vendor_report"]``) after the run, never during it, and returns rows
    ``(label, value)`` or ``(label, value, unit)`` with ``unit`` one of ``"count"``, ``"pages"``
    (4 KiB pages, printed as a size), ``"ns"`` (printed as a duration) or ``"text"``
    (``emu.report.sections``). ``emu compare`` prints every section with one column per
    vendor (a row a vendor does not produce shows ``-``); ``emu run`` prints the sections of
    plugins after its summary. Section names must be unique; a render that raises is reported
    with the plugin's name.

    :returns: a list of :class:`emu.records.ReportSection`.

    **Example:**

    .. code-block:: python

        from emu import hookimpl
        from emu.records import ReportSection


        def render(data):
            faults = data["counters"]["faults"]
            ms = data["time"]["virtual_ns"] / 1e6
            return [("faults", faults), ("faults per virtual ms", round(faults / ms, 1))]


        @hookimpl
        def emu_report_sections():
            return [ReportSection(name="rates", title="Rates", render=render)]
    """
