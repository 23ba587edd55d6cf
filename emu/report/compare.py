"""``emu compare``: one scenario on several vendors, one table with the vendors as columns.

Every vendor runs the identical operation stream: the workload is generated once from the
scenario and its seed, before any vendor sees it, so the columns differ only by what the vendors
do. The rows are the report sections of every loaded plugin (``emu.report.sections``), the
core's first.

Example::

    from emu.report.compare import compare
    table = compare("examples/tdx-policies.toml", ["tdx:pamt=static", "tdx:policy=running-vcpu"])
    print(table.render())
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from emu.engine.options import find_vendor, split_vendor_spec
from emu.engine.tables import build_tables
from emu.errors import EmuError
from emu.report.sections import KEY_ROWS, format_value, normalize


@dataclass
class Comparison:
    scenario: str
    seed: int
    vendors: list[str]
    #: ``[{"name", "title", "rows": [{"label", "unit", "values": [per vendor]}]}]``
    sections: list[dict]
    results: list = field(default_factory=list, repr=False)
    problems: list[str] = field(default_factory=list)
    #: the scenario's leading comment: the question it asks
    description: str = ""

    def row(self, label: str, section: str | None = None) -> list:
        """The values of one row (by label), one per vendor; ``KeyError`` if no such row."""
        for sec in self.sections:
            if section is not None and sec["name"] != section:
                continue
            for r in sec["rows"]:
                if r["label"].strip() == label.strip():
                    return r["values"]
        raise KeyError(label)

    def to_json(self, full: bool = False) -> str:
        """The table as JSON; with ``full`` each vendor's whole result too."""
        out = {"scenario": self.scenario, "seed": self.seed, "vendors": self.vendors,
               "sections": self.sections}
        if full:
            out["results"] = {spec: r.data for spec, r in zip(self.vendors, self.results)}
        if self.problems:
            out["problems"] = self.problems
        return json.dumps(out, indent=2) + "\n"

    def render(self) -> str:
        """The table as text: a label column, then one right-aligned column per vendor."""
        cells = [[format_value(v, r["unit"]) for v in r["values"]]
                 for sec in self.sections for r in sec["rows"]]
        labels = [r["label"] for sec in self.sections for r in sec["rows"]]
        heads = [_header(spec) for spec in self.vendors]
        lw = max([len(x) for x in labels] + [10]) + 2
        widths = [max([len(h[0]), len(h[1])] + [len(c[i]) for c in cells]) + 2
                  for i, h in enumerate(heads)]
        out = [f"emu compare  scenario {self.scenario}  seed {self.seed}", ""]
        out.append(" " * lw + "".join(h[0].rjust(w) for h, w in zip(heads, widths)))
        if any(h[1] for h in heads):
            out.append(" " * lw + "".join(h[1].rjust(w) for h, w in zip(heads, widths)))
        k = 0
        for sec in self.sections:
            if not sec["rows"]:
                continue
            out.append(sec["title"])
            for r in sec["rows"]:
                out.append(("  " + r["label"]).ljust(lw)
                           + "".join(c.rjust(w) for c, w in zip(cells[k], widths)))
                k += 1
        for p in self.problems:
            out.append(f"note: {p}")
        return "\n".join(out) + "\n"


def _header(spec: str) -> tuple[str, str]:
    """A column's heading on two lines: the vendor, then its options."""
    name, _, opts = spec.partition(":")
    return name, opts


def _costs_for(vendor_names: list[str], plugins, costs) -> list[list[str]]:
    """Each vendor's share of ``--cost NAME=NS``: the names its cost table has. A name no vendor
    has is an error, as it would be for ``emu run``."""
    names = [set(build_tables(find_vendor(n, plugins.vendors), {}).cost_names)
             for n in vendor_names]
    shares = [[] for _ in vendor_names]
    for item in costs or ():
        key = item.partition("=")[0].strip()
        hit = False
        for i, known in enumerate(names):
            if key in known:
                shares[i].append(item)
                hit = True
        if not hit:
            every = sorted(set().union(*names))
            raise EmuError(f"--cost {item!r}: no compared vendor has a cost {key!r}; "
                           f"costs: {', '.join(every)}")
    return shares


def compare(scenario, vendors, *, plugins=None, costs=(), seed=None, check=False,
            cache_dir=None, teardown=True, progress=None, batch_size=1 << 16,
            all_rows=False, probes=(), probe_stream=None, probe_json=False,
            trace_events=None, trace_from_ns=0, sample_memory=False) -> Comparison:
    """Run ``scenario`` on each vendor spec (``NAME[:opt=val,...]``) and tabulate the results.

    Rows that are 0 (or absent) for every vendor are left out unless ``all_rows``, except the
    headline rows of :data:`emu.report.sections.KEY_ROWS`. ``probes`` attach to every run;
    each run's probe output is preceded by a line naming its vendor (``--- tdx ---``, or a
    ``{"type": "vendor", ...}`` document with ``probe_json``).
    """
    from emu.api import load_plugin_set, run
    from emu.workload import load_scenario

    from pathlib import Path

    path = Path(scenario)
    if not path.is_file():
        raise EmuError(f"scenario {str(path)!r}: no such file")
    plugins = load_plugin_set(plugins)
    sc = load_scenario(path, plugins.phase_kinds)
    vendors = list(vendors) or list(sc.compare_vendors)
    if not vendors:
        raise EmuError(f"{path}: give --vendor (repeatable), or list the vendors in the "
                       "scenario's [compare] table: vendors = [\"tdx\", \"snp\"]")
    if len(set(vendors)) != len(vendors):
        twice = sorted({v for v in vendors if vendors.count(v) > 1})
        raise EmuError(f"--vendor {twice[0]!r} is given twice")
    specs = list(vendors)
    names = [split_vendor_spec(s)[0] for s in specs]
    for n in names:
        find_vendor(n, plugins.vendors)
    shares = _costs_for(names, plugins, costs)
    results = []
    for spec, share in zip(specs, shares):
        if probes:
            stream = probe_stream or sys.stdout
            stream.write(json.dumps({"type": "vendor", "data": spec}) + "\n" if probe_json
                         else f"--- {spec} ---\n")
        results.append(run(sc, spec, costs=share, check=check, plugins=plugins, seed=seed,
                           cache_dir=cache_dir, teardown=teardown, progress=progress,
                           batch_size=batch_size, probes=probes, probe_stream=probe_stream,
                           probe_json=probe_json, trace_events=trace_events,
                           trace_from_ns=trace_from_ns,
                           sample_memory=sample_memory))
    problems = []
    sections = []
    for sec in plugins.report_sections.values():
        per_vendor = []
        for r in results:
            try:
                per_vendor.append(normalize(sec.render(r.data)))
            except Exception as e:  # a plugin's bug: name it, keep the rest of the table
                problems.append(f"report section {sec.name!r} failed: "
                                f"{type(e).__name__}: {e}")
                per_vendor = None
                break
        if per_vendor is None:
            continue
        rows = _merge_rows(per_vendor)
        if not all_rows:
            rows = [r for r in rows if r["label"] in KEY_ROWS
                    or any(v not in (None, 0) for v in r["values"])]
        sections.append({"name": sec.name, "title": sec.title, "rows": rows})
    for spec, r in zip(specs, results):
        viol = r.data["check"]["violation"]
        if viol:
            problems.append(f"{spec}: --check failed at operation {viol['op_index']}: "
                            + "; ".join(viol["problems"]))
    seed_used = results[0].data["seed"]
    return Comparison(scenario=str(scenario), seed=seed_used, vendors=specs, sections=sections,
                      results=results, problems=problems, description=sc.description)


def _merge_rows(per_vendor: list[list[tuple]]) -> list[dict]:
    """One row per label. A label only some vendors produce (a split cause, a firmware call)
    goes right after the label that precedes it in that vendor's rows, so related rows stay
    together."""
    order: list[str] = []
    units: dict[str, str] = {}
    values: dict[str, list] = {}
    for i, rows in enumerate(per_vendor):
        prev = None
        for label, value, unit in rows:
            if label not in values:
                at = order.index(prev) + 1 if prev is not None else 0
                order.insert(at, label)
                units[label] = unit
                values[label] = [None] * len(per_vendor)
            values[label][i] = value
            prev = label
    return [{"label": lb, "unit": units[lb], "values": values[lb]} for lb in order]
