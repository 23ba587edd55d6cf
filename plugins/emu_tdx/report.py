"""The ``tdx`` report section: what a Dynamic PAMT policy is judged by, as rows ``emu compare``
lays side by side (PAMT memory is in the core's memory rows, owner ``fw_metadata``).

Rows for a run of another vendor are empty, so a TDX-versus-SNP table shows ``-`` there.
"""
from __future__ import annotations

from emu.records import ReportSection


def rows(data: dict) -> list:
    if data["vendor"]["name"] != "tdx":
        return []
    rep = data["vendor_report"]
    c = data["counters"]
    out = [
        ("PAMT", rep["pamt"], "text"),
        ("policy", rep["policy"] or "-", "text"),
        ("static PAMT, % of host memory", f"{rep['pamt_static_percent']:.4f}%", "text"),
        ("static PAMT", rep["pamt_static_pages"], "pages"),
        ("page pairs at peak", rep["pamt_pairs_peak"]),
        ("page pairs at end", rep["pamt_pairs_now"]),
        ("page pairs added (PAMT.ADD)", c["pamt_pairs_added"]),
        ("page pairs removed (PAMT.REMOVE)", c["pamt_pairs_removed"]),
        ("page pairs leaked", c["pairs_leaked"]),
        ("tdx_pamt_get calls", c["pamt_gets"]),
        ("  of which lock-free", c["pamt_gets_fast"]),
        ("pairs added after MISSING_PAMT_PAGE_PAIR", c["lazy_pair_faults"]),
        ("2M refused for want of a pair", c["huge_denied_by_pair"]),
        ("GUEST_INHIBIT set", c["guest_inhibits"]),
        ("TDH.MEM.TRACK (tdx_track)", c["tdx_tracks"]),
        ("vCPU kicks by tdx_track", c["track_kicks"]),
    ]
    for key, n in rep["failed_calls"].items():
        out.append((f"failed {key}", n))
    return out


SECTION = ReportSection("tdx", "TDX: Dynamic PAMT and the module", rows)
