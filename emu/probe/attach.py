"""Run a compiled probe program alongside a session, and print what it produces.

:class:`ProbeRun` owns the program's memory ``D``, hands the kernels the consumer's address
(``S.sc[SC_PROBE_*]``) and turns on the points it attaches to. It runs ``BEGIN`` before the
first operation, gives the consumer whatever is left in the ring after every batch, formats the
output records (``printf``, ``print``) in order, and at the end runs ``END`` and prints every map
in bpftrace's exit format (or ``-f json``). Everything it prints goes to one text stream.

Differences from bpftrace, on purpose: ``print``, ``clear``, ``zero`` and ``delete`` act when
the probe runs (bpftrace applies them asynchronously, so a map printed and cleared in an
``interval`` probe can show updates made after the interval); ``exit()`` stops the workload after
the operation in progress, and emu still tears the VMs down (probes no longer fire) so its own
report stays whole.
"""
from __future__ import annotations

import ctypes
import json
import sys
from dataclasses import dataclass, field

import numpy as np

from emu.model import state as st
from emu.probe import output as out
from emu.probe import printf as pf
from emu.probe import runtime as rt
from emu.probe.compile import Program
from emu.probe.points import Ty

#: events the ring holds while a program is attached: few enough to stay in the L1/L2 cache
#: between the kernels writing them and the program reading them (a 65,536-event ring cost
#: 10 ns per event more on the boot benchmark; 256 events, 5)
RING_EVENTS = 256


def with_probe_ring(S):
    """``S`` with a ring of :data:`RING_EVENTS` events (the same arrays otherwise; the kernels
    take the ring's size from the array, so nothing recompiles)."""
    if S.ring.shape[0] == RING_EVENTS:
        return S
    return S._replace(ring=np.zeros((RING_EVENTS, S.ring.shape[1]), np.int64))


_CONSUMER = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def flush_ring(S) -> None:
    """Hand the events left in the ring to whatever consumer is attached (``SC_PROBE_FN``: a
    probe program, or a trace recorder in front of one), as the kernels do when it fills."""
    n = int(S.sc[st.SC_RING_N])
    fn = int(S.sc[st.SC_PROBE_FN])
    if n and fn:
        S.sc[st.SC_RING_N] = 0
        if _CONSUMER(fn)(int(S.sc[st.SC_PROBE_RING]), n, int(S.sc[st.SC_PROBE_DATA])):
            S.sc[st.SC_STOP] = 1


@dataclass
class ProbeRun:
    program: Program
    stream: object = None
    json: bool = False
    D: np.ndarray = None
    S: object = None
    exited: bool = False
    lines: list = field(default_factory=list)

    def __post_init__(self):
        if self.stream is None:
            self.stream = sys.stdout
        self.D = np.zeros(self.program.layout.size, np.int64)
        self.D[rt.H_OUT_BASE] = self.program.layout.out_base
        self.D[rt.H_OUT_CAP] = self.program.layout.out_cap
        for slot, b in zip(self.program.layout.interval_slots, self.program.checked.intervals):
            self.D[slot] = b.interval_ns
        self._program = self.program.module.program
        # each printf's conversions, parsed once (records are formatted per event)
        self._conversions = [
            [getattr(c, "conversion", "d") for c in pf.parse_format(text)
             if not isinstance(c, str)] + ["s"] * len(types)
            for text, types in self.program.checked.formats]

    # --- wiring ---------------------------------------------------------------------------------
    def attach(self, S):
        """Point a session's state at this program and enable its points; returns the state
        to run with (the same arrays, with a ring of :data:`RING_EVENTS` events)."""
        S = with_probe_ring(S)
        self.S = S
        checked = self.program.checked
        ring_points = set(checked.attached)
        if checked.intervals:
            ring_points.add(0)                      # emu:op ticks virtual time forward
        for p in ring_points:
            count_only = p in checked.count_points and not (p == 0 and checked.intervals)
            S.probe_mask[p] = st.PROBE_COUNT if count_only else st.PROBE_RING
        S.probe_hits[:] = 0
        S.sc[st.SC_PROBE_FN] = self._program.address
        S.sc[st.SC_PROBE_RING] = S.ring.ctypes.data
        S.sc[st.SC_PROBE_DATA] = self.D.ctypes.data
        S.sc[st.SC_RING_N] = 0
        S.sc[st.SC_STOP] = 0
        # exit() should stop the run at the operation that called it: hand the ring over
        # after every operation that produced events; otherwise only when it fills
        S.sc[st.SC_RING_FLUSH_AT] = 1 if checked.uses_exit else S.ring.shape[0] + 1
        return S

    def detach(self) -> None:
        """Stop feeding the program (its maps stay readable)."""
        S = self.S
        if S is None:
            return
        self.fold()
        S.probe_mask[:] = 0
        S.sc[st.SC_PROBE_FN] = 0
        S.sc[st.SC_RING_N] = 0
        S.sc[st.SC_RING_FLUSH_AT] = S.ring.shape[0] + 1
        S.sc[st.SC_STOP] = 0                        # the driver runs operations again

    # --- running --------------------------------------------------------------------------------
    def begin(self) -> None:
        self._note_exit(self._program.ctypes(0, -1, self.D.ctypes.data))
        self.drain()

    def after_batch(self) -> None:
        """Print the output records the batch produced; note an ``exit()``."""
        if self.S.sc[st.SC_STOP]:
            self.exited = True
        self.drain()

    @property
    def events_seen(self) -> int:
        return int(self.D[rt.H_EVENTS])

    def fold(self) -> None:
        """Add the hits of count-only points into their maps."""
        if self.S is not None and self.program.checked.count_points:
            self._program.ctypes(self.S.probe_hits.ctypes.data, -3, self.D.ctypes.data)

    def end(self) -> None:
        """Hand over the last events, run the END blocks (after exit() too, as bpftrace does)
        and print every map that holds something."""
        if self.S is not None:
            flush_ring(self.S)
            self.after_batch()
            # the run's time ran on to its end: interval probes due by then fire, and END
            # sees that time as nsecs
            end = int(self.S.ctx_clock.max())
            if not self.exited:
                self._note_exit(self._program.ctypes(end, -4, self.D.ctypes.data))
                self.drain()
            self.D[rt.H_NOW] = max(int(self.D[rt.H_NOW]), end)
        self.fold()
        self.D[rt.H_EXIT] = 0                      # END runs after exit(), as in bpftrace
        self._program.ctypes(0, -2, self.D.ctypes.data)
        self.drain()
        self._write(self.format_exit())
        lost = int(self.D[rt.H_OUT_LOST])
        if lost:
            self._write((out.format_lost_json(lost) if self.json else out.format_lost(lost))
                        + "\n")
        self._warn_full_maps()

    def _note_exit(self, flag) -> None:
        if flag:
            self.exited = True
            if self.S is not None:
                self.S.sc[st.SC_STOP] = 1

    # --- output ---------------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        if text:
            self.stream.write(text)

    def drain(self) -> None:
        """Format and print the output records in the buffer, then empty it."""
        D = self.D
        base = int(D[rt.H_OUT_BASE])
        end = base + int(D[rt.H_OUT_N])
        i = base
        checked = self.program.checked
        while i < end:
            kind = int(D[i])
            if kind == rt.REC_PRINTF:
                fid, nargs = int(D[i + 1]), int(D[i + 3])
                fmt_text, types = checked.formats[fid]
                convs = self._conversions[fid]
                args = [self._render(types[k], int(D[i + 4 + k]), convs[k])
                        for k in range(nargs)]
                text = pf.format_printf(fmt_text, args)
                self._write(out.format_printf_json(text) + "\n" if self.json else text)
                i += 4 + nargs
            elif kind == rt.REC_PRINT_MAP:
                mid, top, div, nrows = int(D[i + 1]), int(D[i + 2]), int(D[i + 3]), int(D[i + 5])
                ml = self._map_by_id(mid)
                width = ml.row - 1
                rows = D[i + 6: i + 6 + nrows * width].reshape(nrows, width)
                data = self._map_data(ml, rows)
                text = out.format_map_json(data, top, div) if self.json else \
                    out.format_map(data, top, div)
                self._write(text + "\n" if self.json and text else text)
                i += 6 + nrows * width
            elif kind == rt.REC_PRINT_VALUE:
                ty = checked.print_types[int(D[i + 1])]
                value = self._render(ty, int(D[i + 3]), "s")
                self._write(json.dumps({"type": "value", "data": value}) + "\n" if self.json
                            else f"{value}\n")
                i += 4
            else:
                raise RuntimeError(f"probe output buffer corrupt at word {i}: record {kind}")
        D[rt.H_OUT_N] = 0

    def _render(self, ty: Ty, value: int, conversion: str):
        """A recorded value as printf gets it: a name for a string or a named value printed
        with ``%s``, else the number."""
        if ty.kind == "str":
            return self.program.names.name("string", value)
        if ty.kind == "sym" and conversion == "s":
            return self.program.names.name(ty.table, value)
        return value

    def _map_by_id(self, mid: int):
        for ml in self.program.layout.maps.values():
            if ml.info.id == mid:
                return ml
        raise KeyError(mid)

    def live_rows(self, ml) -> np.ndarray:
        D = self.D
        table = D[ml.base + 2: ml.base + 2 + ml.cap * ml.row].reshape(ml.cap, ml.row)
        return table[table[:, 0] == rt.ROW_LIVE][:, 1:]

    def _map_data(self, ml, rows) -> out.MapData:
        info = ml.info
        nk = ml.nkeys
        entries = []
        for row in rows:
            key = tuple(self.program.names.name(t.table, int(v)) if t.kind == "sym" else int(v)
                        for t, v in zip(info.key_types, row[:nk]))
            vals = [int(v) for v in row[nk:]]
            if info.kind in ("avg", "stats"):
                value = (vals[0], vals[1])
            elif info.kind in ("hist", "lhist"):
                value = vals
            else:
                value = vals[0]
            entries.append((key, value))
        return out.MapData(name=info.name, kind=info.kind, entries=entries,
                           hist_bits=info.hist_bits or 0, lhist=info.lhist)

    def maps(self) -> list[out.MapData]:
        """Every map as it stands now, in name order."""
        self.fold()
        return [self._map_data(ml, self.live_rows(ml))
                for _, ml in sorted(self.program.layout.maps.items())]

    def format_exit(self) -> str:
        maps = self.maps()
        if self.json:
            return out.format_exit_maps_json(maps)
        return out.format_exit_maps(maps)

    def dropped(self) -> dict[str, int]:
        """Updates dropped per map because it held its maximum number of keys."""
        return {name: int(self.D[ml.base + 1]) for name, ml in self.program.layout.maps.items()
                if self.D[ml.base + 1]}

    def _warn_full_maps(self) -> None:
        for name, n in sorted(self.dropped().items()):
            m = self.program.checked.maps[name]
            sys.stderr.write(f"emu: map {name} was full ({m.max_keys} keys): {n:,} updates "
                             f"dropped; declare room with `let {name} = hash(N);`\n")
