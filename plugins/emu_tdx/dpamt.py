"""The host kernel's side of Dynamic PAMT: a refcount per 2M region and ``tdx_pamt_get/put``.

``reference/tdx.md`` §3.1 (v2 onward, v6 API): TDH.PHYMEM.PAMT.ADD runs only when a region's
refcount goes 0 -> 1 and PAMT.REMOVE only on 1 -> 0, under one global spinlock ``pamt_lock``;
the other transitions take a lock-free fast path (``atomic_inc_not_zero`` /
``atomic_dec_and_test``). The pair's two pages are taken *before* the lock, from the cache the
caller names or from the page allocator (an atomic-context allocation error when the caller
cannot sleep), and go back if the refcount turned out to be non-zero. A failed PAMT.REMOVE only
warns: the pair leaks (v6 02/11).

With static PAMT every call here returns at once.
"""
from emu.jit import kernel
from emu.model import clock, host, pools
from emu.model import consts as C
from emu.model import state as st

from emu_tdx import abi as A
from emu_tdx import module as M
from emu_tdx import state as T

CNT = st.N_CNT


@kernel
def take_page(V, S, ctx, vm, pool, inst, site):
    """One page for a PAMT pair: from ``pool[inst]``, or the page allocator when ``pool`` < 0."""
    if pool >= 0:
        return pools.take(S, ctx, vm, pool, inst, C.OWN_FW_META, site)
    return host.alloc_4k(S, ctx, vm, C.OWN_FW_META, site)


@kernel(cold=True)
def give_back(V, S, ctx, vm, pfn, pool, inst):
    """Return an unused pair page to the cache it came from (if it has room), else free it."""
    if pfn < 0:
        return
    if pool >= 0 and S.pool_count[pool, inst] < S.pool_cap[pool]:
        n = S.pool_count[pool, inst]
        S.pool_pfns[pool, inst, n] = pfn
        S.pool_count[pool, inst] = n + 1
        host.set_owner(S, pfn, 1, S.pool_owner[pool])
    else:
        host.free_frames_one(S, ctx, vm, pfn)


@kernel
def pamt_get(V, S, ctx, vm, pfn, pool, inst):
    """``tdx_pamt_get(pfn, cache)``: make sure the 2M region of ``pfn`` has its page pair.

    Returns 0, or a TDX status / -1 (no memory) on failure.
    """
    if not M.dpamt(V):
        return 0
    r = pfn >> 9
    if V.opt[T.OPT_POLICY] == T.POL_LAZY:
        # no refcounts: a pair is there or is added now; the module's hints remove it
        if V.pamt2m_pt[r] == A.PT_PAMT:
            return 0
        return lazy_add(V, S, ctx, vm, pfn)
    S.cnt[CNT + T.CN_GETS] += 1
    if V.refcount[r] > 0:
        V.refcount[r] += 1
        S.cnt[CNT + T.CN_GETS_FAST] += 1
        clock.emit(S, T.POINT_PAMT_GET, ctx, vm, -1, r, V.refcount[r], 0, 0, 0, 0)
        return 0
    return _get_slow(V, S, ctx, vm, r, pool, inst)


@kernel(cold=True)
def _get_slow(V, S, ctx, vm, r, pool, inst):
    """The refcount was 0: take a pair, then add it under ``pamt_lock`` unless someone did."""
    p0 = take_page(V, S, ctx, vm, pool, inst, T.SITE_PAIR)
    p1 = take_page(V, S, ctx, vm, pool, inst, T.SITE_PAIR)
    if p0 < 0 or p1 < 0:
        give_back(V, S, ctx, vm, p0, pool, inst)
        give_back(V, S, ctx, vm, p1, pool, inst)
        return -1
    clock.lock(S, ctx, T.LOCK_PAMT, 0, True)
    status = 0
    added = 0
    if V.refcount[r] > 0:
        V.refcount[r] += 1
    else:
        status = M.tdh_phymem_pamt_add(V, S, ctx, r << 9, p0, p1)
        clock.emit(S, T.POINT_PAMT_ADD, ctx, vm, -1, r, p0, p1, status, 0, 0)
        if status == A.SUCCESS:
            V.refcount[r] = 1
            added = 1
            S.cnt[CNT + T.CN_PAIRS_ADDED] += 1
        else:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_PAMT_ADD, status)
    clock.unlock(S, ctx, T.LOCK_PAMT, 0, True)
    if added == 0:
        give_back(V, S, ctx, vm, p0, pool, inst)
        give_back(V, S, ctx, vm, p1, pool, inst)
    clock.emit(S, T.POINT_PAMT_GET, ctx, vm, -1, r, V.refcount[r], added, 0, 0, 0)
    return status


@kernel(cold=True)
def _emit_remove(V, S, ctx, vm, r, status):
    """The ``tdx:pamt_remove`` event: the pair the module gave back (or -1 when it refused)."""
    ok = status == A.SUCCESS
    clock.emit(S, T.POINT_PAMT_REMOVE, ctx, vm, -1, r, V.out[1] if ok else -1,
               V.out[2] if ok else -1, status, 0, 0)


@kernel(cold=True)
def free_pair(V, S, ctx, vm, p0, p1):
    """Zero and free the two pages of a pair the module gave back (``tdx_quirk_reset_paddr``)."""
    clock.charge(S, ctx, 2 * S.cost[st.COST_ZERO_4K])
    host.free_frames_one(S, ctx, vm, p0)
    host.free_frames_one(S, ctx, vm, p1)


@kernel
def pamt_put(V, S, ctx, vm, pfn):
    """``tdx_pamt_put(pfn)``: drop one reference; the last one removes the region's pair."""
    if not M.dpamt(V) or V.opt[T.OPT_POLICY] == T.POL_LAZY:
        return
    r = pfn >> 9
    S.cnt[CNT + T.CN_PUTS] += 1
    if V.refcount[r] > 1:
        V.refcount[r] -= 1
        S.cnt[CNT + T.CN_PUTS_FAST] += 1
        clock.emit(S, T.POINT_PAMT_PUT, ctx, vm, -1, r, V.refcount[r], 0, 0, 0, 0)
        return
    _put_slow(V, S, ctx, vm, r)


@kernel(cold=True)
def _put_slow(V, S, ctx, vm, r):
    """The last reference: remove the pair under ``pamt_lock`` and free its pages."""
    if V.refcount[r] <= 0:
        clock.error(S, ctx, vm, C.ERR_VENDOR, A.FW_PAMT_REMOVE, r)
        return
    clock.lock(S, ctx, T.LOCK_PAMT, 0, True)
    removed = 0
    status = M.tdh_phymem_pamt_remove(V, S, ctx, r << 9)
    _emit_remove(V, S, ctx, vm, r, status)
    V.refcount[r] = 0
    if status == A.SUCCESS:
        removed = 1
        S.cnt[CNT + T.CN_PAIRS_REMOVED] += 1
    clock.unlock(S, ctx, T.LOCK_PAMT, 0, True)
    if status == A.SUCCESS:
        free_pair(V, S, ctx, vm, V.out[1], V.out[2])
    else:
        # the kernel only warns; the pair stays with the module and its pages are lost
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_PAMT_REMOVE, status)
        S.cnt[CNT + T.CN_PAIRS_LEAKED] += 1
        if V.pamt2m_pt[r] == A.PT_PAMT:
            host.set_owner(S, V.pamt2m_pair[r, 0], 1, C.OWN_LEAKED)
            host.set_owner(S, V.pamt2m_pair[r, 1], 1, C.OWN_LEAKED)
    clock.emit(S, T.POINT_PAMT_PUT, ctx, vm, -1, r, V.refcount[r], removed, 0, 0, 0)


@kernel(cold=True)
def lazy_add(V, S, ctx, vm, pfn):
    """lazy: add the pair of ``pfn``'s region where we stand, with pages from the page
    allocator (under ``mmu_lock`` that is an allocation in atomic context)."""
    S.cnt[CNT + T.CN_LAZY_FAULTS] += 1
    r = pfn >> 9
    p0 = host.alloc_4k(S, ctx, vm, C.OWN_FW_META, T.SITE_LAZY_PAIR)
    p1 = host.alloc_4k(S, ctx, vm, C.OWN_FW_META, T.SITE_LAZY_PAIR)
    if p0 < 0 or p1 < 0:
        give_back(V, S, ctx, vm, p0, -1, 0)
        give_back(V, S, ctx, vm, p1, -1, 0)
        return -1
    status = M.tdh_phymem_pamt_add(V, S, ctx, r << 9, p0, p1)
    clock.emit(S, T.POINT_PAMT_ADD, ctx, vm, -1, r, p0, p1, status, 1, 0)
    if status != A.SUCCESS:
        host.free_frames_one(S, ctx, vm, p0)
        host.free_frames_one(S, ctx, vm, p1)
        return status
    S.cnt[CNT + T.CN_PAIRS_ADDED] += 1
    return 0


@kernel
def removal_hint(V, S, ctx, vm, pfn, hint):
    """The module said ``pfn``'s region counts no page any more: lazy removes its pair."""
    if not hint:
        return
    S.cnt[CNT + T.CN_HINTS] += 1
    if V.opt[T.OPT_POLICY] != T.POL_LAZY or not M.dpamt(V):
        return
    status = M.tdh_phymem_pamt_remove(V, S, ctx, (pfn >> 9) << 9)
    _emit_remove(V, S, ctx, vm, pfn >> 9, status)
    if status == A.SUCCESS:
        S.cnt[CNT + T.CN_PAIRS_REMOVED] += 1
        free_pair(V, S, ctx, vm, V.out[1], V.out[2])
