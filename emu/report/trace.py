"""``--trace FILE.json``: a Chrome trace-event file that Perfetto (ui.perfetto.dev) opens.

What it shows, per run (a process; ``emu compare`` puts every vendor side by side):

* each execution context (vCPUs, each VM's VMM thread and MMU notifier, RCU, khugepaged) as a
  thread, named as probe scripts name it (``td/vcpu0``);
* the workload's operations as slices on the context that ran them, from their start to the
  context's next operation; operations that took no virtual time are left out;
* firmware calls (every probe point with an ``ns`` field: SEAMCALLs, RMP instructions, SEV
  commands, the guest's accepts) as slices ending when the call returned, nested in the
  operation that made them; lock waits (``wait mmu_lock``) the same way;
* splits, merges and errors as instants on their context;
* memory by owner and the pages held in each memory cache as counters, sampled after every
  batch of operations.

Events come from the probe ring (:mod:`emu.report.trace_record`); only the first
``max_events`` are kept (100,000 by default, about 18 MB of JSON), from ``start_ns`` of virtual
time on (``--trace-from``), and the file and the command's output say how many more there were. Time is virtual: Perfetto's microseconds are the
emulator's virtual microseconds. Slices on a thread nest, as Perfetto's JSON importer requires,
because every context's clock only moves forward.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from emu.model import consts as C
from emu.model import state as st
from emu.report import trace_record as tr

DEFAULT_MAX_EVENTS = 100_000
PAGE_MIB = 4096 / (1 << 20)


@dataclass
class TraceRecorder:
    """Records one run's events for the trace; attach before the run, ``finish`` after it."""

    max_events: int = DEFAULT_MAX_EVENTS
    label: str = ""
    #: virtual time (ns) before which events are not kept
    start_ns: int = 0
    D: np.ndarray = None
    S: object = None
    tables: object = None
    layout: object = None
    counters: list = field(default_factory=list)     # (time, memory by owner, pool levels)
    end_clock: np.ndarray = None

    def attach(self, session) -> None:
        """Enable the traced points and put the recorder in front of any probe program."""
        from emu.probe.attach import with_probe_ring
        from emu.probe.compile import context_names

        S = session.S = with_probe_ring(session.S)
        self.S = S
        self.tables = session.tables
        self.layout = session.layout
        self.contexts = context_names(session.layout)
        nctx = S.ctx_clock.shape[0]
        self.D = np.zeros(tr.HEADER + 2 * nctx + self.max_events * tr.COLS, np.int64)
        D = self.D
        D[1] = self.max_events
        D[3] = S.sc[st.SC_PROBE_FN]
        D[4] = S.sc[st.SC_PROBE_DATA]
        D[5] = nctx
        points = session.tables.points
        D[6] = C.POINT_OP
        D[7] = [p.name for p in points].index("lock:acquire")
        D[8] = self.start_ns
        D[tr.HEADER: tr.HEADER + nctx] = -1
        for i in self.traced_points(points):
            S.probe_mask[i] = st.PROBE_RING         # a count-only point must now send events
        S.sc[st.SC_PROBE_FN] = tr.record.address
        S.sc[st.SC_PROBE_RING] = S.ring.ctypes.data
        S.sc[st.SC_PROBE_DATA] = D.ctypes.data
        self.sample()

    @staticmethod
    def traced_points(points) -> set[int]:
        keep = set()
        for i, p in enumerate(points):
            fields = [f.name for f in p.fields]
            if (p.name in ("emu:op", "emu:error", "lock:acquire") or "ns" in fields
                    or p.name.endswith(":split") or p.name.endswith(":merge")):
                keep.add(i)
        return keep

    def after_batch(self) -> None:
        self.sample()

    def sample(self) -> None:
        S = self.S
        if int(S.ctx_clock.max()) < self.start_ns:
            return
        self.counters.append((int(S.ctx_clock.max()), S.own_pages.copy(),
                              S.pool_count.sum(axis=1).copy()))

    def finish(self) -> None:
        """After the run: the last events, the final counters and clocks."""
        from emu.probe.attach import flush_ring

        flush_ring(self.S)
        self.sample()
        self.end_clock = self.S.ctx_clock.copy()

    @property
    def kept(self) -> int:
        return int(self.D[0])

    @property
    def dropped(self) -> int:
        return int(self.D[2])

    def rows(self) -> np.ndarray:
        nctx = int(self.D[5])
        base = tr.HEADER + 2 * nctx
        return self.D[base: base + self.kept * tr.COLS].reshape(self.kept, tr.COLS)

    # --- Chrome trace events -------------------------------------------------------------------
    def events(self, pid: int) -> list[dict]:
        """This run's trace events, as process ``pid``."""
        from emu.probe.compile import catalog_for

        points = self.tables.points
        names = catalog_for(points, {p.name for p in points}, self.tables, self.layout).names
        out = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                "args": {"name": f"emu {self.label}".strip()}},
               {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                "args": {"sort_index": pid}}]
        for tid, name in enumerate(self.contexts):
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                        "args": {"name": name}})
        rows = self.rows()
        op_rows: dict[int, list] = {}
        last_time: dict[int, int] = {}
        for row in rows:
            t, point, ctx = int(row[0]), int(row[1]), int(row[2])
            last_time[ctx] = max(last_time.get(ctx, t), t)
            p = points[point]
            args = {f.name: (names.name(f.type, int(v)) if f.type not in ("int", "bool", "ns")
                             else int(v)) for f, v in zip(p.fields, row[5:])}
            if point == C.POINT_OP:
                op_rows.setdefault(ctx, []).append((t, args))
            elif "ns" in args and p.name != "lock:acquire":
                ns = int(args["ns"])
                label = _slice_name(p, args)
                out.append({"ph": "X", "cat": "firmware", "name": label, "pid": pid,
                            "tid": ctx, "ts": _us(t - ns), "dur": _us(ns), "args": args})
            elif p.name == "lock:acquire":
                wait = int(args["wait_ns"])
                out.append({"ph": "X", "cat": "lock", "name": f"wait {args['lock']}",
                            "pid": pid, "tid": ctx, "ts": _us(t - wait), "dur": _us(wait),
                            "args": args})
            else:
                kind = args.get("kind", "") if p.name == "emu:error" else args.get("cause", "")
                out.append({"ph": "i", "s": "t", "cat": p.name.split(":")[0],
                            "name": f"{p.name} {kind}".strip(), "pid": pid, "tid": ctx,
                            "ts": _us(t), "args": args})
        end_clock = self.end_clock
        for ctx, ops in op_rows.items():
            for i, (t, args) in enumerate(ops):
                if i + 1 < len(ops):
                    end = ops[i + 1][0]
                elif end_clock is not None and not self.dropped:
                    end = int(end_clock[ctx])
                else:
                    end = last_time.get(ctx, t)
                if end <= t:
                    continue
                out.append({"ph": "X", "cat": "operation", "name": args["kind"], "pid": pid,
                            "tid": ctx, "ts": _us(t), "dur": _us(end - t), "args": args})
        owners = C.OWNER_NAMES
        pools = self.tables.pool_names
        for t, own, held in self.counters:
            out.append({"ph": "C", "name": "memory by owner (MiB)", "pid": pid, "ts": _us(t),
                        "args": {o: round(int(n) * PAGE_MIB, 3) for o, n in zip(owners, own)
                                 if o != "free"}})
            out.append({"ph": "C", "name": "memory cache pages", "pid": pid, "ts": _us(t),
                        "args": {name: int(n) for name, n in zip(pools, held)}})
        return out


def _slice_name(point, args) -> str:
    """A firmware call slice is named by its call (``TDH.MEM.PAGE.AUG``), else by its point."""
    for key in ("call", "command"):
        if key in args and isinstance(args[key], str):
            return args[key]
    return point.name


def _us(ns: int) -> float:
    return ns / 1000


def write_chrome_trace(path, recorders: list[TraceRecorder], scenario: str = "") -> dict:
    """Write the runs' events as one Chrome trace-event JSON file; returns a summary."""
    events = []
    for pid, rec in enumerate(recorders, start=1):
        events.extend(rec.events(pid))
    info = {
        "emu_scenario": scenario,
        "runs": [{"label": r.label, "events_kept": r.kept, "events_dropped": r.dropped}
                 for r in recorders],
        "note": "virtual time; events past the cap of each run were dropped "
                "(emu run --trace-events N raises it)",
    }
    with open(path, "w") as f:
        json.dump({"traceEvents": events, "displayTimeUnit": "ns", "otherData": info}, f,
                  separators=(",", ":"))
    return info
