"""Probe overhead: what an attached program adds per event, and what compiling one costs.

Runs the boot workload (16.8M guest operations, plain vendor) with no probe and with each
program below, interleaved, ``--repeat`` times, and prints the median run time and the cost per
event each program adds (its run time minus the bare run's, over the events its points saw).
``emu:op`` fires once per operation, so it is the hottest point there is. Then it times the
compilation of a probe program never seen before, in this process and in a fresh one, and the
load of a cached one in a fresh process.

    python benchmarks/probes.py [--repeat 5]
    python benchmarks/probes.py --scripts [--repeat 3]   # each probes/*.bt on its example

Figures vary by about 15% between runs on a shared 2-core machine; compare within one run.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workloads" / "boot-64g.toml"

PROGRAMS = {
    "count() on emu:op": "emu:op { @ = count(); }",
    "count() through the ring": "emu:op /1/ { @ = count(); }",
    "count() by key": "emu:op { @[args.kind] = count(); }",
    "hist()": "emu:op { @h = hist(args.gfn); }",
}

COMPILE_CHILD = """
import sys, time
t0 = time.perf_counter()
from emu.api import load_plugin_set
from emu.engine.tables import build_tables
from emu.probe.compile import Script, catalog_for, compile_program
plugins = load_plugin_set()
tables = build_tables(plugins.vendors["plain"], {})
catalog = catalog_for(tables.points, plugins.all_points(), tables)
t1 = time.perf_counter()
program = compile_program([Script(sys.argv[1])], catalog, sys.argv[2])
t2 = time.perf_counter()
print(t2 - t1, t1 - t0)
"""


def prefault(session) -> None:
    """Touch every page of the state arrays before the clock starts: a run's first touches of
    its ~1 GiB of fresh arrays cost page faults that vary by +-30% from run to run and would
    drown the few ns per event being measured."""
    for a in (*session.S, *session.V):
        flat = a.reshape(-1)
        step = max(1, 4096 // max(1, a.itemsize))
        flat[::step] = flat[::step]


def run(script: str | None):
    import emu

    out = io.StringIO()
    r = emu.run(WORKLOAD, "plain", probes=[script] if script else (), probe_stream=out,
                teardown=False, session_hook=prefault)
    events = r.probes.events_seen if r.probes is not None else 0
    if r.probes is not None and r.probes.program.checked.count_points:
        events = r.session.ops_done          # count-only points fold hits: one per op here
    return r.performance["run_s"], events


def compile_in_child(script: str, cache: str) -> tuple[float, float]:
    res = subprocess.run([sys.executable, "-c", COMPILE_CHILD, script, cache],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    compile_s, startup_s = map(float, res.stdout.split())
    return compile_s, startup_s


def script_overheads(repeat: int) -> None:
    """Each ready-made script on the example its header names: run time with and without."""
    import re

    import emu
    from emu.probe.compile import Script

    print(f"probes/ scripts on their examples, median of {repeat}:")
    for path in sorted((HERE.parent / "probes").glob("*.bt")):
        scenario, vendor = re.search(r"^// Example: (\S+) (\S+)", path.read_text(),
                                     re.M).groups()
        script = Script(path.read_text(), str(path))
        bare, probed = [], []
        for _ in range(repeat):
            for probes, times in (((), bare), ([script], probed)):
                r = emu.run(HERE.parent / scenario, vendor, probes=probes,
                            probe_stream=io.StringIO(), session_hook=prefault)
                times.append(r.performance["run_s"])
        b, p = statistics.median(bare), statistics.median(probed)
        print(f"  {path.name:<22} {scenario:<40} {b:7.3f} s -> {p:7.3f} s "
              f"({(p - b) / b * 100:+5.1f}%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scripts", action="store_true",
                    help="Instead: the overhead of each script in probes/ on its example.")
    a = ap.parse_args()
    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    if a.scripts:
        script_overheads(a.repeat)
        return

    times: dict[str, list[float]] = {"none": []}
    events: dict[str, int] = {}
    run(None)                                   # compile or load the driver first
    for name, script in PROGRAMS.items():
        run(script)
        times[name] = []
    for _ in range(a.repeat):
        times["none"].append(run(None)[0])
        for name, script in PROGRAMS.items():
            t, n = run(script)
            times[name].append(t)
            events[name] = n
    base = statistics.median(times["none"])
    print(f"probe overhead on {WORKLOAD.name} (plain), median of {a.repeat}:")
    print(f"  {'no probe':<28} {base:7.3f} s")
    for name, script in PROGRAMS.items():
        t = statistics.median(times[name])
        per = (t - base) / events[name] * 1e9 if events[name] else float("nan")
        print(f"  {name:<28} {t:7.3f} s  {events[name]:>11,} events  "
              f"{per:+6.2f} ns/event   {script}")

    from emu.api import load_plugin_set
    from emu.engine.tables import build_tables
    from emu.probe.compile import Script, catalog_for, compile_program
    plugins = load_plugin_set()
    tables = build_tables(plugins.vendors["plain"], {})
    catalog = catalog_for(tables.points, plugins.all_points(), tables)
    cache = os.environ.get("EMU_CACHE_DIR") or str(HERE.parent / ".emu-cache")
    cache = str(Path(cache) / "probe-bench")
    stamp = time.time_ns()
    script = f"kvm:map /args.gfn != {stamp}/ {{ @[args.level] = count(); @h = hist(args.pfn); }}"
    t0 = time.perf_counter()
    compile_program([Script(script)], catalog, cache)
    in_process = time.perf_counter() - t0
    fresh = f"kvm:zap /args.gfn != {stamp}/ {{ @[args.cause] = count(); @h = hist(args.gfn); }}"
    new_s, startup = compile_in_child(fresh, cache)
    cached_s, _ = compile_in_child(fresh, cache)
    print("probe compile:")
    print(f"  new program, this process (numba warm)   {in_process:6.3f} s")
    print(f"  new program, fresh process               {new_s:6.3f} s "
          f"(after {startup:.2f} s importing emu and loading plugins)")
    print(f"  cached program, fresh process            {cached_s:6.3f} s")


if __name__ == "__main__":
    main()
