"""What Perfetto's JSON importer requires of a Chrome trace-event file, as a checker.

From google/perfetto's JSON trace parser and the trace-event format (reference/probes-and-
plugins.md §5): a ``traceEvents`` array; every event a known ``ph`` with a numeric ``ts`` in
microseconds (metadata excepted); complete events (``X``) with a non-negative ``dur``, nesting
properly on their thread (a slice either ends before the next one starts or contains it);
counters (``C``) with at least one numeric arg; instants (``i``) with a scope; metadata (``M``)
naming processes and threads.
"""
from collections import defaultdict

PHASES = {"X", "i", "C", "M"}


def problems(doc) -> list[str]:
    out = []
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return ["no traceEvents array"]
    threads = defaultdict(list)
    for e in doc["traceEvents"]:
        ph = e.get("ph")
        if ph not in PHASES:
            out.append(f"unknown ph {ph!r}")
            continue
        if not isinstance(e.get("pid"), int):
            out.append(f"pid is not an integer: {e}")
        if ph == "M":
            if e.get("name") in ("process_name", "thread_name") and not e["args"].get("name"):
                out.append(f"metadata without a name: {e}")
            continue
        if not isinstance(e.get("ts"), (int, float)):
            out.append(f"ts is not a number: {e}")
        if ph == "X":
            if not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
                out.append(f"bad dur: {e}")
            threads[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"], e["name"]))
        if ph == "C" and not (e.get("args") and all(isinstance(v, (int, float))
                                                    for v in e["args"].values())):
            out.append(f"counter without numeric args: {e}")
        if ph == "i" and e.get("s") not in ("g", "p", "t"):
            out.append(f"instant without scope: {e}")
    eps = 1e-6
    for key, slices in threads.items():
        slices.sort(key=lambda x: (x[0], -x[1]))
        stack = []
        for start, end, name in slices:
            while stack and stack[-1][1] <= start + eps:
                stack.pop()
            if stack and end > stack[-1][1] + eps:
                out.append(f"thread {key}: {name} [{start}, {end}] overlaps {stack[-1]}")
            stack.append((start, end, name))
    return out
