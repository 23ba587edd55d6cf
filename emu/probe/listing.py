"""``emu probes -l``: the probe points, as ``bpftrace -l`` and ``-lv`` list them."""
from __future__ import annotations

from emu.probe.points import match


def format_points(points: dict, pattern: str = "*", verbose: bool = False) -> str:
    """One point per line; with ``verbose`` its doc, then each field as ``type name``."""
    names = match(pattern, points) if pattern else list(points)
    lines = []
    for name in sorted(names, key=_order(points)):
        p = points[name]
        lines.append(name)
        if verbose:
            lines.append(f"    // {p.doc}")
            for f in p.fields:
                ty = "int64" if f.type in ("int", "ns") else f.type
                note = f"  // {f.doc}" if f.doc else ""
                if f.type == "ns" and not f.doc:
                    note = "  // virtual ns"
                lines.append(f"    {ty} {f.name}{note}")
    return "\n".join(lines) + "\n" if lines else ""


def _order(points: dict):
    """Declaration order (the core's points first), which groups points by provider."""
    index = {n: i for i, n in enumerate(points)}
    return lambda n: index[n]

