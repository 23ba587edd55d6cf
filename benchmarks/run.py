"""Benchmark runner: engine speed on standard workloads, with the interpreted ratio.

For each workload it prints ns per operation and per guest operation, operations per second and
the process's peak memory; then it runs a smaller slice twice, side by side in this one
invocation, jitted and with ``NUMBA_DISABLE_JIT=1`` (in a subprocess), and prints the ratio.

    python benchmarks/run.py [--vendor plain] [--only boot] [--slice-ops 20000]
    python benchmarks/run.py --vendor tdx --only boot      # a TD boot: ns per guest op and per
                                                          # firmware call (SEAMCALLs, TDCALLs)
    python benchmarks/run.py --vendor snp --only boot      # an SEV-SNP boot (RMP instructions,
                                                          # firmware commands)

Figures vary by about 15% between runs on a shared 2-core machine; compare within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "boot": HERE / "workloads" / "boot-64g.toml",
    "touch-1t": HERE / "workloads" / "touch-random-1t.toml",
    "conversions": HERE / "workloads" / "conversion-storm.toml",
}


def run_one(path: Path, vendor: str, max_ops: int | None) -> dict:
    """Run a workload in this process; only the first ``max_ops`` operations if given."""
    import emu
    from emu.api import load_plugin_set
    from emu.engine.session import open_session
    from emu.workload import build_workload, load_scenario
    from emu.api import _vendor_sources

    plugins = load_plugin_set()
    sc = load_scenario(path, plugins.phase_kinds)
    wl = build_workload(sc, plugins.phase_kinds)
    t0 = time.perf_counter()
    s = open_session(plugins, wl.layout, vendor,
                     plugin_sources=_vendor_sources(plugins, vendor.split(":")[0]))
    setup = time.perf_counter() - t0
    batches = []
    n = 0
    for ops in wl.batches(1 << 16):
        if max_ops is not None and n + len(ops) > max_ops:
            ops = ops[: max_ops - n]
        batches.append(ops)
        n += len(ops)
        if max_ops is not None and n >= max_ops:
            break
    t1 = time.perf_counter()
    for ops in batches:
        s.run(ops)
    dt = time.perf_counter() - t1
    from emu.model import state as st

    guest = int(s.S.sc[st.SC_GUEST_OPS])
    fw = int(s.S.fw_count.sum())
    return {"ops": n, "guest_ops": guest, "run_s": dt, "setup_s": setup, "fw_calls": fw,
            "ns_per_fw_call": dt / fw * 1e9 if fw else None,
            "ns_per_op": dt / n * 1e9, "ns_per_guest_op": dt / max(1, guest) * 1e9,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vendor", default="plain")
    ap.add_argument("--only", choices=sorted(WORKLOADS))
    ap.add_argument("--slice-ops", type=int, default=20000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--max-ops", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_one(Path(a.child), a.vendor, a.max_ops)))
        return
    names = [a.only] if a.only else list(WORKLOADS)
    print(f"vendor {a.vendor}")
    print(f"{'workload':<12} {'ops':>12} {'ns/op':>8} {'ns/guest op':>12} {'Mops/s':>8} "
          f"{'peak RSS':>9} {'interp/jit':>11} {'fw calls':>11} {'ns/fw call':>11}")
    for name in names:
        path = WORKLOADS[name]
        full = _child(path, a.vendor, None, {})
        jit = _child(path, a.vendor, a.slice_ops, {})
        interp = _child(path, a.vendor, a.slice_ops, {"NUMBA_DISABLE_JIT": "1"})
        ratio = interp["run_s"] / jit["run_s"] if jit["run_s"] else float("nan")
        print(f"{name:<12} {full['ops']:>12,} {full['ns_per_op']:>8.1f} "
              f"{full['ns_per_guest_op']:>12.1f} {1e3 / full['ns_per_op']:>8.1f} "
              f"{full['peak_rss_mib']:>7.0f}Mi {ratio:>10.0f}x {full['fw_calls']:>11,} "
              f"{_fmt(full['ns_per_fw_call']):>11}")
        sys.stdout.flush()


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def _child(path, vendor, max_ops, env) -> dict:
    """Each measurement in a fresh process, so peak memory is that workload's own."""
    cmd = [sys.executable, __file__, "--child", str(path), "--vendor", vendor]
    if max_ops:
        cmd += ["--max-ops", str(max_ops)]
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
