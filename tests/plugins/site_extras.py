"""A site plugin: a probe point outside any vendor, a phase kind, a report section, and cost
numbers measured for the ``good`` vendor."""
from emu import hookimpl
from emu.records import Field, PhaseKind, ProbePoint, ReportSection


def generate(phase, scenario, rng):
    return []


def render(result):
    return [("site", "lab 3")]


@hookimpl
def emu_probe_points():
    return [ProbePoint("site:tick", "The site's timer fired.", (Field("n"),))]


@hookimpl
def emu_phase_kinds():
    return [PhaseKind(name="site_idle", doc="Do nothing for a while.", fields={"ns": int},
                      generate=generate)]


@hookimpl
def emu_report_sections():
    return [ReportSection(name="site", title="Site", render=render)]


@hookimpl
def emu_cost_overrides(vendor):
    return {"good_flush": 42} if vendor == "good" else None
