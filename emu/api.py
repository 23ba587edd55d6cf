"""``emu.run``: run one scenario on one vendor and return a :class:`emu.report.Result`.

Example::

    import emu
    result = emu.run("examples/boot-64g.toml", vendor="plain")
    print(result["memory"]["peak"]["kvm_page_table"])
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import structlog

from emu.engine.options import parse_cost_overrides
from emu.engine.session import open_session, snapshot_memory, teardown_ops
from emu.engine.tables import build_tables
from emu.engine.options import find_vendor, split_vendor_spec
from emu.errors import EmuError
from emu.report.result import Result, build
from emu.workload import Scenario, build_workload, load_scenario

log = structlog.get_logger("emu")

#: operations per batch under ``--check``
CHECK_BATCH = 1 << 20


def load_plugin_set(plugins=None, plugin_paths=(), autoload=True, blocked=()):
    """A loaded :class:`emu.plugins.Plugins` (built once per process for the same arguments)."""
    if plugins is not None:
        return plugins
    from emu.plugins import load_plugins

    return load_plugins(plugin_paths=tuple(plugin_paths), autoload=autoload,
                        blocked=tuple(blocked))


def run(scenario, vendor: str = "plain", *, costs=(), check: bool = False, plugins=None,
        plugin_paths=(), autoload: bool = True, blocked=(), cache_dir=None, seed=None,
        batch_size: int = 1 << 16, teardown: bool = True, progress=None, probe_points=(),
        on_events=None, session_hook=None, probes=(), probe_stream=None,
        probe_json: bool = False, trace_events: int | None = None, trace_from_ns: int = 0,
        sample_memory: bool = False) -> Result:
    """Run ``scenario`` (a path or a parsed :class:`emu.workload.Scenario`) on ``vendor``.

    ``vendor`` is ``NAME[:opt=val,...]``; ``costs`` are ``NAME=NS`` overrides; ``check``
    verifies the global invariants after every batch; ``teardown`` destroys the VMs still
    alive at the end, so memory left behind is visible. ``probe_points`` names points whose
    events go to ``on_events(array)`` after every batch. ``probes`` are probe scripts
    (:class:`emu.probe.compile.Script`, or strings) compiled into one program that runs with
    the workload and prints to ``probe_stream`` (stdout by default; ``probe_json`` for bpftrace's
    ``-f json``); ``result.probes`` keeps it, maps and all. ``trace_events`` records up to that
    many events for a Chrome trace (``result.trace``, see :mod:`emu.report.trace`), from
    ``trace_from_ns`` of virtual time on;
    ``sample_memory`` samples memory by owner over virtual time (``result.memory_samples``,
    about 200 samples: it picks the batch size).
    """
    plugins = load_plugin_set(plugins, plugin_paths, autoload, blocked)
    if not isinstance(scenario, Scenario):
        path = Path(scenario)
        if not path.is_file():
            raise EmuError(f"scenario {str(path)!r}: no such file")
        scenario = load_scenario(path, plugins.phase_kinds)
    if seed is not None:
        scenario = dataclasses.replace(scenario,
                                       host=dataclasses.replace(scenario.host, seed=int(seed)))
    workload = build_workload(scenario, plugins.phase_kinds)
    name, _ = split_vendor_spec(vendor)
    v = find_vendor(name, plugins.vendors)
    overrides = parse_cost_overrides(costs, build_tables(v, {}).cost_names)
    sources = _vendor_sources(plugins, v.name)
    t0 = time.perf_counter()
    session = open_session(plugins, workload.layout, vendor, costs=overrides, check=check,
                           cache_root=cache_dir, plugin_sources=sources,
                           probe_points=probe_points)
    session.on_events = on_events
    probe_run = None
    if probes:
        probe_run = attach_probes(session, plugins, probes, probe_stream, probe_json)
    recorder = traced = None
    if trace_events:
        from emu.report.trace import TraceRecorder

        recorder = TraceRecorder(int(trace_events), label=vendor, start_ns=int(trace_from_ns))
        recorder.attach(session)
        session.listeners.append(recorder)
        traced = recorder
    sampler = None
    if sample_memory:
        from emu.report.sampler import MemorySampler, batch_for

        sampler = MemorySampler(session)
        session.listeners.append(sampler)
        sampler.after_batch()
        batch_size = min(batch_size, batch_for(workload.estimated_ops))
    if session_hook is not None:
        session_hook(session)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    bar = _Progress(workload.estimated_ops, progress)
    if check:
        # the check walks the whole state, so check after large batches; a failing batch is
        # bisected down to its first bad operation anyway
        batch_size = max(batch_size, CHECK_BATCH)
    for ops in workload.batches(batch_size):
        session.run(ops)
        bar.update(session.ops_done)
        if session.violation is not None or session.stopped:
            break
    bar.close()
    run_s = time.perf_counter() - t1
    ops_total = session.ops_done
    at_end = snapshot_memory(session.S)
    mapped_end = [int(x) for x in session.S.mapped]
    after = None
    n_teardown = 0
    if teardown and session.violation is None:
        if session.stopped:             # exit(): probes are done, the VMs still go
            if recorder is not None:
                recorder.finish()
                session.listeners.remove(recorder)
                recorder = None
            probe_run.detach()
            session.listeners.remove(probe_run)
            session.stopped = False
        down = teardown_ops(session.S)
        n_teardown = len(down)
        if n_teardown:
            session.run(down)
        after = snapshot_memory(session.S)
    if recorder is not None:
        recorder.finish()
    if probe_run is not None:
        probe_run.end()
        probe_run.detach()
    vendor_report = {}
    if session.vendor.summarize is not None:
        vendor_report = session.vendor.summarize(session.V, session.S)
    data = build(session, scenario=scenario.source, seed=scenario.host.seed, at_end=at_end,
                 after_teardown=after, ops_total=ops_total, teardown_ops=n_teardown,
                 vendor_report=vendor_report, mapped_end=mapped_end)
    guest = data["operations"]["guest"]
    performance = {
        "setup_s": round(setup_s, 3), "compile_or_load_s": round(session.compile_s, 3),
        "run_s": round(run_s, 3),
        "ns_per_op": round(run_s / ops_total * 1e9, 2) if ops_total else None,
        "ns_per_guest_op": round(run_s / guest * 1e9, 2) if guest else None,
        "cache_dir": str(session.cache_dir),
    }
    if probe_run is not None:
        performance["probe_compile_s"] = round(probe_run.program.compile_s, 3)
        performance["probe_events"] = int(probe_run.events_seen)
    result = Result(data=data, performance=performance, source=session.source)
    result.session = session
    result.probes = probe_run
    result.trace = traced
    result.memory_samples = sampler
    return result


def attach_probes(session, plugins, probes, stream=None, as_json: bool = False):
    """Compile ``probes`` for ``session``'s points, attach them and run their BEGIN blocks."""
    from emu.probe.attach import ProbeRun
    from emu.probe.compile import Script, catalog_for, compile_program

    scripts = [p if isinstance(p, Script) else Script(str(p), "<script>") for p in probes]
    catalog = catalog_for(session.tables.points, plugins.all_points(), session.tables,
                          session.layout)
    program = compile_program(scripts, catalog, session.cache_dir)
    probe_run = ProbeRun(program, stream=stream, json=as_json)
    session.S = probe_run.attach(session.S)
    session.listeners.append(probe_run)
    probe_run.begin()
    session.stopped = probe_run.exited
    return probe_run


def _vendor_sources(plugins, vendor_name: str):
    """The plugin source files that compile into this vendor's driver (for the cache key)."""
    from emu.plugins import _module_source

    module = plugins._modules.get(plugins.vendor_plugin(vendor_name))
    path = _module_source(module) if module is not None else None
    return [path] if path is not None else plugins.plugin_sources()


class _Progress:
    """A one-line progress display on stderr for long runs (a TTY only, unless forced)."""

    def __init__(self, total: int, enabled):
        self.total = max(1, total)
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.t0 < 1.0 or now - self.last < 0.2:
            return
        self.last = now
        self.shown = True
        pct = min(100.0, 100.0 * done / self.total)
        rate = done / (now - self.t0)
        sys.stderr.write(f"\r  {done:,} / ~{self.total:,} operations ({pct:5.1f}%), "
                         f"{rate / 1e6:.1f} M ops/s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
