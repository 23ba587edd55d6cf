"""Report sections: named groups of rows computed from a finished run's result.

A section's ``render(data)`` takes the result dictionary (``docs/result-json.md``) and returns
rows ``(label, value)`` or ``(label, value, unit)``; ``unit`` says how to print the value:

* ``"count"`` (the default for integers): ``12,345``;
* ``"pages"``: 4 KiB pages, printed as a size (``"8 MiB"``); JSON keeps the page count;
* ``"ns"``: virtual nanoseconds, printed as a duration (``"1.5 ms"``);
* ``"text"``: printed as it is.

``emu compare`` lays every section of every loaded plugin side by side, one column per vendor;
a label a run does not produce is shown as ``-``. ``emu run`` prints the sections plugins add
after its own summary. The core's sections (:data:`CORE_SECTIONS`) are registered through the
same hook (``emu_report_sections``) as a third-party plugin's.
"""
from __future__ import annotations

from emu.workload.sizes import format_duration, format_size

PAGE = 4096
UNITS = ("count", "pages", "ns", "text")

#: rows a comparison shows even when every vendor has 0 there (a 0 is the finding)
KEY_ROWS = frozenset({"operations", "guest operations", "virtual time", "splits", "merges",
                      "firmware calls", "errors", "left after teardown"})

#: owners whose pages are the confidential-computing overhead a comparison is about
METADATA_OWNERS = ("static_metadata", "fw_metadata", "fw_page_table", "fw_control",
                   "vendor_pool", "kvm_page_table", "kvm_pool", "leaked")


def normalize(rows) -> list[tuple[str, object, str]]:
    """Rows as ``(label, value, unit)``, checking their shape (a plugin's rows included)."""
    out = []
    for row in rows:
        if not isinstance(row, tuple) or len(row) not in (2, 3) or not isinstance(row[0], str):
            raise ValueError(f"a row must be (label, value) or (label, value, unit), got {row!r}")
        label, value = row[0], row[1]
        unit = row[2] if len(row) == 3 else ("count" if isinstance(value, int) else "text")
        if unit not in UNITS:
            raise ValueError(f"row {label!r}: unit {unit!r} is not one of {', '.join(UNITS)}")
        out.append((label, value, unit))
    return out


def format_value(value, unit: str) -> str:
    """How a cell prints in a table."""
    if value is None:
        return "-"
    if unit == "pages":
        return format_size(int(value) * PAGE)
    if unit == "ns":
        return format_duration(int(value))
    if unit == "count" and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


# --- the core's sections --------------------------------------------------------------------------

def workload_rows(data: dict) -> list:
    ops = data["operations"]
    return [("operations", ops["total"]), ("guest operations", ops["guest"]),
            ("virtual time", data["time"]["virtual_ns"], "ns")]


#: what each split cause cost, per split: (label, key of splits.cost_by_cause, unit, per split)
SPLIT_COST_ROWS = (
    ("firmware calls per split", "firmware_calls", "count", True),
    ("time in firmware per split", "firmware_ns", "ns", True),
    ("virtual time per split", "ns", "ns", True),
    ("extra memory per split", "extra_pages", "pages", True),
    ("vCPU kicks per split", "vcpu_kicks", "count", True),
    ("TLB flushes per split", "tlb_flushes", "count", True),
    ("allocations in atomic context", "atomic_allocations", "count", False),
    ("failed firmware calls", "firmware_failed", "count", False),
    ("failed splits", "failed", "count", False),
)


def split_rows(data: dict) -> list:
    rows = []
    for key, label in (("splits", "split"), ("merges", "merge")):
        d = data[key]
        rows.append((f"{key}", d["total"]))
        for cause, by_level in d["by_cause"].items():
            n = sum(by_level.values())
            rows.append((f"  {label} by {cause}", n))
            if key == "splits":
                rows += _split_cost_rows(d.get("cost_by_cause", {}).get(cause), n)
    rows.append(("  split failed", data["splits"]["failed"]))
    rows.append(("  merge refused", data["merges"]["refused"]))
    end = data["mappings"]["end"]
    rows.append(("huge mappings at end (2M)", end["2M"]))
    rows.append(("huge mappings at end (1G)", end["1G"]))
    rows.append(("4K mappings at end", end["4K"]))
    c = data["counters"]
    for name, label in (("tlb_flushes", "TLB flushes"), ("vcpu_kicks", "vCPU kicks")):
        if name in c:
            rows.append((label, c[name]))
    return rows


def _split_cost_rows(cost: dict | None, n: int) -> list:
    """Per split of one cause: what the splits cost, averaged (totals for failures)."""
    if not cost:
        return []
    rows = []
    for label, key, unit, per in SPLIT_COST_ROWS:
        value = cost[key]
        if per:
            value = round(value / n, 2) if n else None
            if unit in ("ns", "pages") and value is not None:
                value = int(round(value))
        rows.append((f"    {label}", value, unit))
    return rows


def firmware_rows(data: dict) -> list:
    fw = data["firmware"]
    rows = [("firmware calls", fw["calls"]), ("time in firmware", fw["ns"], "ns"),
            ("failed firmware calls", fw["failed"])]
    for name, row in fw["by_call"].items():
        rows.append((f"  {name}", row["count"]))
    return rows


def memory_rows(data: dict) -> list:
    mem = data["memory"]
    rows = []
    for owner in METADATA_OWNERS:
        for col, label in (("peak", "peak"), ("end", "end"), ("after_teardown", "after teardown")):
            if col in mem and owner in mem[col]:
                rows.append((f"{owner} ({label})", mem[col][owner], "pages"))
    if "after_teardown" in mem:
        left = sum(n for owner, n in mem["after_teardown"].items()
                   if owner not in ("free", "host"))
        rows.append(("left after teardown", left, "pages"))
    return rows


def contention_rows(data: dict) -> list:
    rows = []
    for name, row in data["locks"].items():
        if row["acquisitions"]:
            rows.append((f"{name} wait", row["wait_ns"], "ns"))
            rows.append((f"{name} contended", row["contended"]))
    return rows


def error_rows(data: dict) -> list:
    e = data["errors"]
    rows = [("errors", e["total"])]
    for kind, n in e["by_kind"].items():
        rows.append((f"  {kind}", n))
    for kind, sites in e["by_site"].items():
        for site, n in sites.items():
            rows.append((f"  {kind} at {site}", n))
    return rows


def core_sections():
    """The core's sections, in the order a comparison prints them."""
    from emu.records import ReportSection

    return [
        ReportSection("workload", "Workload", workload_rows),
        ReportSection("splits", "Splits, merges and mappings", split_rows),
        ReportSection("firmware", "Firmware", firmware_rows),
        ReportSection("memory", "Memory by owner", memory_rows),
        ReportSection("contention", "Locks", contention_rows),
        ReportSection("errors", "Errors", error_rows),
    ]


CORE_SECTION_NAMES = ("workload", "splits", "firmware", "memory", "contention", "errors")


def render_plugin_sections(data: dict, report_sections) -> str:
    """The sections plugins add, as text for ``emu run`` (the core's are its summary already).
    Sections with no rows for this run (another vendor's) are skipped; a section that fails is
    one line naming it."""
    out: list[str] = []
    for sec in report_sections.values():
        if sec.name in CORE_SECTION_NAMES:
            continue
        try:
            rows = normalize(sec.render(data))
        except Exception as e:  # a plugin's bug must not hide the run's result
            out.append(f"report section {sec.name!r} failed: {type(e).__name__}: {e}")
            continue
        if not rows:
            continue
        out.append(sec.title)
        width = max(len(label) for label, _, _ in rows) + 2
        for label, value, unit in rows:
            out.append(f"  {label:<{width}}{format_value(value, unit)}")
    return "\n".join(out) + "\n" if out else ""
