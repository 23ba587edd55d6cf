"""The jitted side of ``--trace``: copy probe-ring events into a bounded trace buffer.

``record`` is a consumer with the probe programs' signature (:mod:`emu.model.probe_call`): the
kernels call it when the ring fills. It keeps the first ``cap`` events and counts the rest, and
hands the same events on to a probe program attached behind it, so ``--trace`` and ``-e`` work
together. An operation that took no virtual time (a guest access that did not exit) replaces the
previous such operation of its context instead of taking a row: a boot of millions of accesses
keeps only the operations that did something. Lock acquisitions that did not wait are skipped.

Events before ``from_ns`` of virtual time are skipped (``--trace-from``), so a long run's later
phases fit in the budget.

Buffer layout (int64): ``[count, cap, dropped, next_fn, next_data, nctx, op_point, lock_point,
from_ns, last_row[nctx], unused[nctx], rows[cap][11]]``.
"""
from numba import cfunc, types

from emu.model.probe_call import call_consumer
from emu.probe.runtime import int64_ptr

HEADER = 9
COLS = 11            # emu.model.state.EV_COLS


@cfunc(types.int64(types.int64, types.int64, types.int64), cache=True, _nrt=False)
def record(ring_addr, n, data_addr):
    R = int64_ptr(ring_addr)
    D = int64_ptr(data_addr)
    count = D[0]
    cap = D[1]
    nctx = D[5]
    op_point = D[6]
    lock_point = D[7]
    start = D[8]
    base = HEADER + 2 * nctx
    for i in range(n):
        e = i * COLS
        if R[e] < start:
            continue
        point = R[e + 1]
        c = R[e + 2]
        if point == lock_point and R[e + 7] == 0:
            continue
        if point == op_point and 0 <= c < nctx:
            last = D[HEADER + c]
            if last >= 0:
                r = base + last * COLS
                if D[r + 1] == op_point and D[r] == R[e]:
                    for j in range(COLS):
                        D[r + j] = R[e + j]
                    continue
        if count >= cap:
            D[2] += 1
            continue
        r = base + count * COLS
        for j in range(COLS):
            D[r + j] = R[e + j]
        if 0 <= c < nctx:
            D[HEADER + c] = count
        count += 1
    D[0] = count
    if D[3] != 0:
        return call_consumer(D[3], ring_addr, n, D[4])
    return 0
