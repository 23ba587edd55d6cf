"""Virtual time, locks, probe events and error records.

Each execution context has its own clock; work charges its cost to the context doing it.
Operations run one after another in the workload's order, but the contexts' clocks do not move
in step: a vCPU doing cheap 4K accepts falls behind one doing 2M accepts, two VMs drift apart.
So a lock is modelled as the intervals of virtual time it was held, not as one "free at" time
(DESIGN.md "State, time and cost"): a context that wants the lock at time ``t`` waits only if
``t`` falls inside a remembered hold, until that hold ends, and the wait is accounted. A holder
"in the future" of a context that is behind makes it wait only when its clock reaches that hold,
as on a real timeline. The last ``HOLDS_KEPT`` holds of writers and of readers are remembered per
lock instance; a rwlock's readers overlap each other but not a writer. An acquisition costs a
compare when every remembered hold ended before it (the common case).

Spinning locks (``mmu_lock``, the PAMT lock) put the context in atomic context while held: an
allocation there is an error event, as lockdep would report ``sleeping function called from
invalid context``.
"""
from emu.jit import kernel
from emu.model import consts as C
from emu.model import probe_call
from emu.model import state as st

LOCK_SLEEPS = st.LOCK_SLEEPS


@kernel
def charge(S, ctx, ns):
    """Advance context ``ctx`` by ``ns`` virtual nanoseconds of work."""
    S.ctx_clock[ctx] += ns
    S.ctx_busy[ctx] += ns


@kernel
def charge_cost(S, ctx, cost_id, times):
    """Advance ``ctx`` by ``times`` x the cost table entry ``cost_id``."""
    ns = S.cost[cost_id] * times
    S.ctx_clock[ctx] += ns
    S.ctx_busy[ctx] += ns


@kernel
def emit(S, point, ctx, vm, vcpu, a0, a1, a2, a3, a4, a5):
    """Record a probe event at ``point`` if any probe is attached to it (one branch otherwise).

    ``probe_mask[point]`` is 0 (nothing attached), 1 (write the event to the ring) or
    ``PROBE_COUNT`` (the program only counts this point's hits, ``@x = count()`` with no
    predicate: a counter is bumped and the program folds it into its map when it is read).
    A full ring is handed to the attached probe program (:mod:`emu.model.probe_call`), so
    aggregations never lose an event; without a program, the event is counted as lost.
    """
    mode = S.probe_mask[point]
    if mode == 0:
        return
    if mode == st.PROBE_COUNT:
        S.probe_hits[point] += 1
        return
    n = S.sc[st.SC_RING_N]
    if n >= S.ring.shape[0]:
        if S.sc[st.SC_PROBE_FN] == 0:
            S.sc[st.SC_RING_LOST] += 1
            return
        probe_call.flush(S)
        n = 0
    row = S.ring[n]
    row[st.EV_TIME] = S.ctx_clock[ctx]
    row[st.EV_POINT] = point
    row[st.EV_CTX] = ctx
    row[st.EV_VM] = vm
    row[st.EV_VCPU] = vcpu
    row[st.EV_ARGS] = a0
    row[st.EV_ARGS + 1] = a1
    row[st.EV_ARGS + 2] = a2
    row[st.EV_ARGS + 3] = a3
    row[st.EV_ARGS + 4] = a4
    row[st.EV_ARGS + 5] = a5
    S.sc[st.SC_RING_N] = n + 1


@kernel(cold=True)
def error(S, ctx, vm, kind, a, b):
    """Count an error event; keep the first ``MAX_ERROR_RECORDS`` with the operation index."""
    S.err_count[kind] += 1
    if a >= 0 and a < S.err_site.shape[1]:
        S.err_site[kind, a] += 1
    n = S.sc[st.SC_ERR_RECORDS]
    if n < S.err_rec.shape[0]:
        rec = S.err_rec[n]
        rec[st.ER_OP] = S.sc[st.SC_OP_INDEX]
        rec[st.ER_TIME] = S.ctx_clock[ctx]
        rec[st.ER_KIND] = kind
        rec[st.ER_A] = a
        rec[st.ER_B] = b
        rec[st.ER_CTX] = ctx
        S.sc[st.SC_ERR_RECORDS] = n + 1
    emit(S, C.POINT_ERROR, ctx, vm, -1, kind, a, b, 0, 0, 0)


@kernel
def _held_until(S, lock_id, inst, kind, t):
    """The end of a remembered hold of ``kind`` that covers time ``t``, or -1."""
    if t >= S.lock_last[lock_id, inst, kind]:
        return -1
    end = -1
    holds = S.lock_holds[lock_id, inst, kind]
    for k in range(st.HOLDS_KEPT):
        if holds[k, 0] <= t < holds[k, 1] and holds[k, 1] > end:
            end = holds[k, 1]
    return end


@kernel
def lock(S, ctx, lock_id, inst, write):
    """Take lock ``lock_id`` (instance ``inst``: the VM slot, or 0 for a global lock)."""
    t = S.ctx_clock[ctx]
    start = t
    # waiting out one hold may land inside another: at most one step per remembered hold
    for _ in range(2 * st.HOLDS_KEPT + 1):
        end = _held_until(S, lock_id, inst, st.HOLD_WRITER, start)
        if write:
            r_end = _held_until(S, lock_id, inst, st.HOLD_READER, start)
            if r_end > end:
                end = r_end
        if end <= start:
            break
        start = end
    S.lock_acq[lock_id, inst] += 1
    wait = start - t
    if wait > 0:
        S.lock_wait[lock_id, inst] += wait
        S.lock_contended[lock_id, inst] += 1
        S.ctx_clock[ctx] = start
    S.lock_start[lock_id, inst, st.HOLD_WRITER if write else st.HOLD_READER] = start
    charge(S, ctx, S.cost[st.COST_LOCK])
    if (S.lock_scope[lock_id] & LOCK_SLEEPS) == 0:
        S.ctx_atomic[ctx] += 1
    emit(S, C.POINT_LOCK, ctx, inst, -1, lock_id, write, wait, 0, 0, 0)


@kernel
def unlock(S, ctx, lock_id, inst, write):
    """Release a lock taken with :func:`lock`: remember the hold, from its start to now."""
    now = S.ctx_clock[ctx]
    kind = st.HOLD_WRITER if write else st.HOLD_READER
    start = S.lock_start[lock_id, inst, kind]
    if now > start:
        k = S.lock_pos[lock_id, inst, kind]
        S.lock_holds[lock_id, inst, kind, k, 0] = start
        S.lock_holds[lock_id, inst, kind, k, 1] = now
        S.lock_pos[lock_id, inst, kind] = (k + 1) % st.HOLDS_KEPT
        if now > S.lock_last[lock_id, inst, kind]:
            S.lock_last[lock_id, inst, kind] = now
    if (S.lock_scope[lock_id] & LOCK_SLEEPS) == 0:
        S.ctx_atomic[ctx] -= 1


@kernel
def may_sleep(S, ctx):
    """True where an allocation may sleep: no spinlock held and not an RCU callback."""
    return S.ctx_atomic[ctx] == 0 and S.ctx_kind[ctx] != C.CTX_RCU


@kernel
def sync_clock(S, ctx, t):
    """Bring an idle context forward to time ``t`` (it was asleep until then)."""
    if S.ctx_clock[ctx] < t:
        S.ctx_clock[ctx] = t


@kernel
def vm_now(S, vm):
    """The latest clock among VM ``vm``'s vCPUs: "now" for a host thread acting on that VM."""
    base = S.vm_vcpu_base[vm]
    t = 0
    for i in range(S.vm_vcpus[vm]):
        c = S.ctx_clock[base + i]
        if c > t:
            t = c
    return t


@kernel
def rand31(S):
    """The run's single deterministic random stream: a 64-bit LCG (Knuth's MMIX constants),
    returning its top 31 bits. Integer arithmetic wraps in numba, which the LCG relies on."""
    x = S.sc[st.SC_RNG] * 6364136223846793005 + 1442695040888963407
    S.sc[st.SC_RNG] = x
    return (x >> 33) & 0x7FFFFFFF


@kernel
def chance_ppm(S, ppm):
    """True with probability ``ppm`` / 1e6."""
    if ppm >= 1_000_000:
        return True
    if ppm <= 0:
        return False
    return (rand31(S) % 1_000_000) < ppm
