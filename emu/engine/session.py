"""One run: a vendor with its options, the state it runs on, and the compiled driver.

A :class:`Session` is built once per (scenario layout, vendor, options) and then fed operations
in batches. Everything that happens per event happens inside ``driver.run_batch``; this module
only moves batches across, drains the probe ring and, with ``--check``, verifies the state
between batches.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

import emu
from emu import jit
from emu.engine import check as checks
from emu.engine import codegen
from emu.engine.options import resolve_options, split_vendor_spec, find_vendor
from emu.engine.tables import Tables, build_tables, make_core_state
from emu.errors import EmuError
from emu.model import consts as C
from emu.model import state as st
from emu.model import host, vendor_ops
from emu.model.layout import Layout, OP_DTYPE
from emu.records import Vendor

log = structlog.get_logger("emu.engine")

#: the emu sources that compile into jitted code (editing anything else keeps the cache)
EMU_JIT_SOURCES = (
    Path(emu.__file__).parent / "model",
    Path(emu.__file__).parent / "jit.py",
    Path(emu.__file__).parent / "engine" / "codegen.py",
)


@dataclass
class Session:
    vendor: Vendor
    options: dict
    tables: Tables
    layout: Layout
    S: st.CoreState
    V: object
    driver: object
    source: str
    cache_dir: Path
    compile_s: float = 0.0
    ops_done: int = 0
    batches: int = 0
    check: bool = False
    checked_batches: int = 0
    on_events: object = None
    violation: dict | None = None
    #: a probe called exit(): the workload stops
    stopped: bool = False
    #: what watches the run (a probe program, a trace recorder, a memory sampler): each one's
    #: ``after_batch()`` runs after every batch, once the ring's events were handed over
    listeners: list = field(default_factory=list)

    # --- running -----------------------------------------------------------------------------
    def run(self, ops: np.ndarray) -> None:
        """Run one batch; with ``check``, verify it and find the first bad operation if any."""
        if ops.dtype != OP_DTYPE:
            raise TypeError("operations must use emu.model.layout.OP_DTYPE")
        if self.violation is not None or self.stopped:
            return
        first = self.ops_done
        snapshot = self._snapshot() if self.check else None
        done = int(self.driver.run_batch(self.S, self.V, ops, first))
        self.ops_done += done
        self.batches += 1
        self._drain()
        if done < len(ops):
            ops = ops[:done]
        if self.check:
            problems = self.violations()
            self.checked_batches += 1
            if problems:
                self.violation = self._locate(snapshot, ops, first, problems)

    def violations(self) -> list[str]:
        problems = checks.violations(self.S)
        n = int(self.driver.vendor_check(self.S, self.V))
        if n:
            problems.append(f"vendor {self.vendor.name!r}: {n} of its own invariants broken")
        return problems

    def _drain(self) -> None:
        """Hand the ring's events to the attached consumer (a probe program or a trace
        recorder in front of one) or to ``on_events``, then tell every listener."""
        if self.S.sc[st.SC_PROBE_FN] != 0:
            from emu.probe.attach import flush_ring

            flush_ring(self.S)
        else:
            n = int(self.S.sc[st.SC_RING_N])
            if n:
                if self.on_events is not None:
                    self.on_events(self.S.ring[:n].copy())
                self.S.sc[st.SC_RING_N] = 0
        for listener in self.listeners:
            listener.after_batch()
        self.stopped = bool(self.S.sc[st.SC_STOP])

    def _replay(self, snapshot, ops, first) -> None:
        self._restore(snapshot)
        mask = self.S.probe_mask.copy()
        self.S.probe_mask[:] = 0
        self.driver.run_batch(self.S, self.V, ops, first)
        self.S.probe_mask[:] = mask
        self.S.sc[st.SC_RING_N] = 0

    def _snapshot(self):
        return (tuple(a.copy() for a in self.S), tuple(a.copy() for a in self.V))

    def _restore(self, snap) -> None:
        for dst, src in zip(self.S, snap[0]):
            dst[...] = src
        for dst, src in zip(self.V, snap[1]):
            dst[...] = src

    def _locate(self, snapshot, ops, first, problems) -> dict:
        """Bisect the batch from its snapshot: the shortest prefix that breaks an invariant.

        The replays run with every probe point off, so attached programs see each event once.
        """
        saved = self.on_events
        self.on_events = None
        lo, hi = 0, len(ops)   # prefix lo is fine, prefix hi is not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            self._replay(snapshot, ops[:mid], first)
            if self.violations():
                hi = mid
            else:
                lo = mid
        self._replay(snapshot, ops[:hi], first)
        first_problems = self.violations() or problems
        self.on_events = saved
        index = first + hi - 1
        op = ops[hi - 1]
        return {
            "op_index": int(index),
            "op": C.OP_NAMES[int(op["kind"])],
            "vm": int(op["vm"]), "vcpu": int(op["vcpu"]), "gfn": int(op["gfn"]),
            "count": int(op["count"]), "level": int(op["level"]),
            "problems": first_problems,
        }


def _make_vendor_state(vendor: Vendor, layout: Layout, options: dict, tables: Tables):
    """Call the vendor's ``make_state``; it may also take ``tables`` to size its own arrays."""
    params = inspect.signature(vendor.make_state).parameters
    try:
        if "tables" in params:
            V = vendor.make_state(layout, options, tables=tables)
        else:
            V = vendor.make_state(layout, options)
    except EmuError:
        raise
    except Exception as e:  # a plugin bug: name the vendor, keep the cause
        raise EmuError(f"vendor {vendor.name!r}: make_state failed: {type(e).__name__}: {e}") \
            from e
    if not isinstance(V, vendor.state):
        raise EmuError(f"vendor {vendor.name!r}: make_state returned {type(V).__name__}, "
                       f"not {vendor.state.__name__}")
    return V


def open_session(plugins, layout: Layout, vendor_spec: str, *, costs: dict | None = None,
                 check: bool = False, cache_root: Path | None = None,
                 plugin_sources=None, probe_points=(), splices=None,
                 probe_imports: str = "") -> Session:
    """Resolve the vendor, build the state, compile (or load) the driver, set up the host."""
    name, raw = split_vendor_spec(vendor_spec)
    vendor = find_vendor(name, plugins.vendors)
    options = resolve_options(vendor, raw)
    overrides = dict(plugins.cost_overrides(vendor.name))
    overrides.update(costs or {})
    tables = build_tables(vendor, overrides)
    knobs = {
        "private_memory": vendor.private_memory, "exact_zap": vendor.exact_zap,
        "external_spt": vendor.external_spt, "max_level": vendor.max_level,
        "gmem_max_level": vendor.gmem_max_level,
    }
    if vendor.knobs is not None:
        knobs.update(vendor.knobs(options))
    if layout.total_vcpus == 0 and layout.slots:
        raise EmuError("the scenario's VMs have no vCPUs")

    S = make_core_state(
        layout, tables, private_memory=bool(knobs["private_memory"]),
        exact_zap=bool(knobs["exact_zap"]), external_spt=bool(knobs["external_spt"]),
        vendor_max_level=int(knobs["max_level"]), gmem_max_level=int(knobs["gmem_max_level"]))
    index = {p.name: i for i, p in enumerate(tables.points)}
    for p in probe_points:
        S.probe_mask[index[p]] = 1
    V = _make_vendor_state(vendor, layout, options, tables)

    vendor_ops.register_vendor_kernels(vendor.state, vendor.kernels)
    sources = [*EMU_JIT_SOURCES, *(plugin_sources or [])]
    root = Path(cache_root) if cache_root else jit.default_cache_root()
    cache_dir = jit.activate_cache(root, sources)
    fingerprint = cache_dir.name
    src = codegen.render(vendor.name, vendor.state.__module__, fingerprint, splices,
                         probe_imports)
    driver = codegen.load(src, cache_dir)
    t0 = time.perf_counter()
    host.host_setup(S, int(layout.host_reserved_pages))
    driver.host_init(S, V)
    S.ctx_clock[:] = 0          # boot-time work is not part of the run's virtual time
    S.ctx_busy[:] = 0
    # compile (or load) the batch loop now, on an empty batch, so run times exclude it
    driver.run_batch(S, V, np.zeros(0, OP_DTYPE), 0)
    driver.vendor_check(S, V)
    compile_s = time.perf_counter() - t0
    log.debug("session ready", vendor=vendor.name, cache=str(cache_dir), compile_s=compile_s)
    return Session(vendor=vendor, options=options, tables=tables, layout=layout, S=S, V=V,
                   driver=driver, source=src, cache_dir=cache_dir, compile_s=compile_s,
                   check=check)


def teardown_ops(S) -> np.ndarray:
    """Destroy operations for every VM still alive (the run's implicit end)."""
    alive = np.nonzero(S.vm_alive)[0]
    ops = np.zeros(len(alive), OP_DTYPE)
    ops["kind"] = C.OP_VM_DESTROY
    ops["vm"] = alive
    ops["vcpu"] = -1
    return ops


def snapshot_memory(S) -> list[int]:
    return [int(x) for x in S.own_pages]
