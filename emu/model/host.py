"""Host memory: 4K frames in 2M regions, each frame with exactly one owner.

The allocator is deliberately simple and deterministic. 4K allocations are carved from one
current region at a time (then from regions that frees left partly empty), which keeps 2M
regions whole for huge folios the way the buddy allocator's grouping tries to; 2M and 1G
allocations take wholly free regions. Whether a THP allocation *gets* a huge folio is not decided
by fragmentation here but by the scenario's ``huge_folio_chance`` (see ``emu.model.gmem``), which
is the knob users actually want to turn.

Ownership is tracked per frame (``S.frame_owner``) and summed per owner (``S.own_pages``), so the
owners always add up to host memory and ``--check`` can prove it after every batch.
"""
import numpy as np

from emu.jit import kernel
from emu.model import clock
from emu.model import consts as C
from emu.model import state as st

PAGES_2M = 512


@kernel
def _count_owner(S, owner, delta):
    S.own_pages[owner] += delta
    if delta > 0 and S.own_pages[owner] > S.own_peak[owner]:
        S.own_peak[owner] = S.own_pages[owner]


@kernel
def _note_used(S):
    used = S.frame_owner.shape[0] - S.own_pages[C.OWN_FREE]
    if used > S.sc[st.SC_USED_PEAK]:
        S.sc[st.SC_USED_PEAK] = used


@kernel
def _take(S, pfn, owner):
    """Give free frame ``pfn`` to ``owner`` (region bookkeeping only; no cost, no event)."""
    r = pfn >> 9
    if S.region_free[r] == PAGES_2M:
        S.sc[st.SC_FREE_REGIONS] -= 1
        S.gig_free_regions[r >> 9] -= 1
    S.region_free[r] -= 1
    S.frame_owner[pfn] = owner
    S.own_pages[C.OWN_FREE] -= 1
    _count_owner(S, owner, 1)
    S.sc[st.SC_FREE_FRAMES] -= 1


@kernel
def _give(S, pfn):
    """Return ``pfn`` to the free pool, remembering its region if it was full."""
    r = pfn >> 9
    owner = S.frame_owner[pfn]
    S.own_pages[owner] -= 1
    S.own_pages[C.OWN_FREE] += 1
    S.frame_owner[pfn] = C.OWN_FREE
    S.region_free[r] += 1
    S.sc[st.SC_FREE_FRAMES] += 1
    if S.region_free[r] == PAGES_2M:
        S.sc[st.SC_FREE_REGIONS] += 1
        S.gig_free_regions[r >> 9] += 1
    elif S.in_partial[r] == 0 and r != S.sc[st.SC_CUR4K_REGION]:
        S.in_partial[r] = 1
        S.partial_stack[S.sc[st.SC_PARTIAL_TOP]] = r
        S.sc[st.SC_PARTIAL_TOP] += 1


def host_setup(S, reserved_pages: int) -> None:
    """Mark the first ``reserved_pages`` frames as the host's own and count what is free.

    Runs once per run, before the first operation, so it is plain numpy rather than a kernel.
    """
    fo = S.frame_owner
    fo[:reserved_pages] = C.OWN_HOST
    counts = np.bincount(fo, minlength=C.N_OWNERS)[: C.N_OWNERS]
    S.own_pages[:] = counts
    S.own_peak[:] = counts
    free = (fo.reshape(-1, PAGES_2M) == C.OWN_FREE).sum(axis=1)
    S.region_free[:] = free
    S.sc[st.SC_FREE_FRAMES] = int(free.sum())
    whole = free == PAGES_2M
    S.sc[st.SC_FREE_REGIONS] = int(whole.sum())
    gig = np.zeros(S.gig_free_regions.shape[0] * 512, np.int32)
    gig[: whole.size] = whole
    S.gig_free_regions[:] = gig.reshape(-1, 512).sum(axis=1)
    partial = np.nonzero((free > 0) & ~whole)[0]
    S.in_partial[:] = 0
    S.in_partial[partial] = 1
    S.partial_stack[: partial.size] = partial
    S.sc[st.SC_PARTIAL_TOP] = partial.size
    S.sc[st.SC_USED_PEAK] = fo.shape[0] - int(counts[C.OWN_FREE])


@kernel
def _find_free_region(S):
    """A wholly free 2M region, searching round-robin from the last find; -1 if none."""
    nr = S.region_free.shape[0]
    if S.sc[st.SC_FREE_REGIONS] <= 0:
        return -1
    r = S.sc[st.SC_REGION_CURSOR]
    for _ in range(nr):
        if r >= nr:
            r = 0
        if S.region_free[r] == PAGES_2M:
            S.sc[st.SC_REGION_CURSOR] = r + 1
            return r
        r += 1
    return -1


@kernel
def _check_atomic(S, ctx, vm, site):
    if not clock.may_sleep(S, ctx):
        clock.error(S, ctx, vm, C.ERR_ATOMIC_ALLOC, site, 0)
        return 1
    return 0


@kernel
def alloc_4k(S, ctx, vm, owner, site):
    """Allocate one 4K frame for ``owner`` at call site ``site``; -1 when the host is out.

    An attempt where the context may not sleep is recorded as ``ERR_ATOMIC_ALLOC`` at ``site``
    and still served, as a GFP_ATOMIC fallback would be.
    """
    atomic = _check_atomic(S, ctx, vm, site)
    r = S.sc[st.SC_CUR4K_REGION]
    if r < 0 or S.region_free[r] == 0:
        r = -1
        while S.sc[st.SC_PARTIAL_TOP] > 0:
            S.sc[st.SC_PARTIAL_TOP] -= 1
            cand = S.partial_stack[S.sc[st.SC_PARTIAL_TOP]]
            S.in_partial[cand] = 0
            if S.region_free[cand] > 0:
                r = cand
                break
        if r < 0:
            r = _find_free_region(S)
        if r < 0:
            clock.error(S, ctx, vm, C.ERR_HOST_OOM, site, 0)
            return -1
        S.sc[st.SC_CUR4K_REGION] = r
        S.sc[st.SC_CUR4K_POS] = 0
    base = r * PAGES_2M
    pfn = -1
    pos = S.sc[st.SC_CUR4K_POS]
    for i in range(PAGES_2M):
        j = (pos + i) & (PAGES_2M - 1)
        if S.frame_owner[base + j] == C.OWN_FREE:
            pfn = base + j
            S.sc[st.SC_CUR4K_POS] = j + 1
            break
    _take(S, pfn, owner)
    S.cnt[st.CNT_ALLOCS] += 1
    clock.charge(S, ctx, S.cost[st.COST_ALLOC_4K])
    _note_used(S)
    clock.emit(S, C.POINT_ALLOC, ctx, vm, -1, site, 0, pfn, atomic, 0, 0)
    return pfn


@kernel(cold=True)
def alloc_2m(S, ctx, vm, owner, site):
    """Allocate a whole free 2M region (a huge folio); -1 when none is free."""
    atomic = _check_atomic(S, ctx, vm, site)
    r = _find_free_region(S)
    if r < 0:
        return -1
    if r == S.sc[st.SC_CUR4K_REGION]:
        S.sc[st.SC_CUR4K_REGION] = -1
    base = r * PAGES_2M
    for i in range(PAGES_2M):
        _take(S, base + i, owner)
    S.cnt[st.CNT_ALLOCS] += 1
    clock.charge(S, ctx, S.cost[st.COST_ALLOC_2M])
    _note_used(S)
    clock.emit(S, C.POINT_ALLOC, ctx, vm, -1, site, 9, base, atomic, 0, 0)
    return base


@kernel(cold=True)
def alloc_1g(S, ctx, vm, owner, site):
    """Allocate 512 wholly free, 1G-aligned regions (a 1G hugetlb page); -1 when none."""
    atomic = _check_atomic(S, ctx, vm, site)
    ng = S.gig_free_regions.shape[0]
    g = S.sc[st.SC_NEXT_GIG]
    found = -1
    for _ in range(ng):
        if g >= ng:
            g = 0
        if S.gig_free_regions[g] == 512 and (g + 1) * 512 <= S.region_free.shape[0]:
            found = g
            break
        g += 1
    if found < 0:
        return -1
    S.sc[st.SC_NEXT_GIG] = found + 1
    base = found * 512 * PAGES_2M
    cur = S.sc[st.SC_CUR4K_REGION]
    if cur >= 0 and (cur >> 9) == found:
        S.sc[st.SC_CUR4K_REGION] = -1
    for i in range(512 * PAGES_2M):
        _take(S, base + i, owner)
    S.cnt[st.CNT_ALLOCS] += 1
    clock.charge(S, ctx, S.cost[st.COST_ALLOC_2M] * 512)
    _note_used(S)
    clock.emit(S, C.POINT_ALLOC, ctx, vm, -1, site, 18, base, atomic, 0, 0)
    return base


@kernel
def free_frames(S, ctx, vm, pfn, npages):
    """Free ``npages`` frames starting at ``pfn`` (one folio, or one page)."""
    owner = S.frame_owner[pfn]
    for i in range(npages):
        _give(S, pfn + i)
    S.cnt[st.CNT_FREES] += 1
    clock.charge(S, ctx, S.cost[st.COST_FREE])
    order = 0
    if npages >= 262144:
        order = 18
    elif npages >= PAGES_2M:
        order = 9
    clock.emit(S, C.POINT_FREE, ctx, vm, -1, order, pfn, owner, 0, 0, 0)


@kernel
def set_owner(S, pfn, npages, owner):
    """Hand ``npages`` frames from their current owner to ``owner`` (e.g. pool -> page table)."""
    for i in range(npages):
        old = S.frame_owner[pfn + i]
        S.own_pages[old] -= 1
        S.frame_owner[pfn + i] = owner
        _count_owner(S, owner, 1)


@kernel
def free_frames_one(S, ctx, vm, pfn):
    """Free one 4K frame (a page-table page, a control page)."""
    free_frames(S, ctx, vm, pfn, 1)
