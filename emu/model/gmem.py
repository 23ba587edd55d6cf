"""Guest memory backing: guest_memfd folios for private memory, VMM folios for shared memory.

A guest page gets its backing on first use. The folio order follows the VM's backing: 4K pages
only; THP, which gets a 2M folio with the scenario's ``huge_folio_chance`` (else 4K); hugetlb 2M;
hugetlb 1G. Private memory is further capped at guest_memfd's largest folio, a vendor knob
(``gmem_max_level``): upstream guest_memfd hands out 4K folios only. A huge folio is only used when its whole gfn range has no backing yet, which is
what a partly punched range looks like to guest_memfd. Private folios are *prepared* once
(``kvm_arch_gmem_prepare`` -> the vendor's ``gmem_prepare``) and *invalidated* when freed
(``kvm_arch_gmem_invalidate``), as in ``reference/snp.md`` §4.1-4.2.

KVM never maps a page larger than its folio (``reference/tdx.md`` §4.1): the fault path reads
the folio level from here. Freeing part of a huge folio splits it first, so the rest survives as
4K folios; the caller has zapped (or split) any mapping larger than the new folios beforehand.
"""
from emu.jit import kernel
from emu.model import clock, host
from emu.model import consts as C
from emu.model import state as st
from emu.model import vendor_ops as vo

P2M = 512
P1G = 262144


@kernel
def folio_level(S, g):
    """The level of the folio backing global gfn ``g`` (``LVL_4K`` when it has none)."""
    if S.r1_folio[g >> 18] != 0:
        return C.LVL_1G
    if S.r2_folio[g >> 9] != 0:
        return C.LVL_2M
    return C.LVL_4K


@kernel
def _range_unbacked(S, g, n):
    for i in range(n):
        if S.g_pfn[g + i] >= 0:
            return False
    return True


@kernel
def _install(S, V, ctx, vm, g, pfn, n, private):
    base = S.vm_gfn_base[vm]
    for i in range(n):
        S.g_pfn[g + i] = pfn + i
    if private:
        vo.gmem_prepare(V, S, ctx, vm, g - base, pfn, 18 if n == P1G else (9 if n == P2M else 0))
        for i in range(n):
            S.g_attr[g + i] |= st.GA_PREPARED
        clock.emit(S, C.POINT_GMEM_PREPARE, ctx, vm, -1, g - base, pfn, n, 0, 0, 0)


@kernel
def get_pfn(S, V, ctx, vm, g, private):
    """The frame backing global gfn ``g``, allocating its folio on first use; -1 if out of memory.

    ``private`` picks guest_memfd (``OWN_GUEST_PRIVATE``, prepared by the vendor) or VMM memory
    (``OWN_GUEST_SHARED``).
    """
    pfn = S.g_pfn[g]
    if pfn >= 0:
        return pfn
    owner = C.OWN_GUEST_PRIVATE if private else C.OWN_GUEST_SHARED
    site = C.SITE_GMEM_FOLIO if private else C.SITE_SHARED_FOLIO
    backing = S.vm_backing[vm]
    if private:
        # guest_memfd's own largest folio (upstream: 4K only), whatever the VM's backing
        cap = S.sc[st.SC_GMEM_MAX_LEVEL]
        if cap == C.LVL_4K:
            backing = C.BACK_4K
        elif cap == C.LVL_2M and backing == C.BACK_HUGETLB_1G:
            backing = C.BACK_HUGETLB_2M
    base = S.vm_gfn_base[vm]
    g1 = g & ~(P1G - 1)
    g2 = g & ~(P2M - 1)
    if backing == C.BACK_HUGETLB_1G and g1 + P1G <= base + S.vm_pages[vm] \
            and _range_unbacked(S, g1, P1G):
        f = host.alloc_1g(S, ctx, vm, owner, site)
        if f >= 0:
            clock.charge_cost(S, ctx, st.COST_ZERO_2M, 512)
            S.r1_folio[g1 >> 18] = 1
            for r in range(512):
                S.r2_folio[(g1 >> 9) + r] = 1
            S.cnt[st.CNT_FOLIO_1G] += 1
            _install(S, V, ctx, vm, g1, f, P1G, private)
            return S.g_pfn[g]
        clock.error(S, ctx, vm, C.ERR_HOST_OOM, site, 18)
    # a huge folio is tried only while the whole 2M range is unbacked: once a range fell back
    # to 4K, later faults in it stay 4K (as THP does once a PTE table exists)
    want_2m = False
    if backing != C.BACK_4K and g2 + P2M <= base + S.vm_pages[vm] \
            and _range_unbacked(S, g2, P2M):
        want_2m = True
        if backing == C.BACK_THP and not clock.chance_ppm(S, S.sc[st.SC_HUGE_PPM]):
            want_2m = False
            S.cnt[st.CNT_HUGE_DENIED] += 1
    if want_2m:
        f = host.alloc_2m(S, ctx, vm, owner, site)
        if f >= 0:
            clock.charge_cost(S, ctx, st.COST_ZERO_2M, 1)
            S.r2_folio[g2 >> 9] = 1
            S.cnt[st.CNT_FOLIO_2M] += 1
            _install(S, V, ctx, vm, g2, f, P2M, private)
            return S.g_pfn[g]
        S.cnt[st.CNT_HUGE_DENIED] += 1
    f = host.alloc_4k(S, ctx, vm, owner, site)
    if f < 0:
        return -1
    clock.charge_cost(S, ctx, st.COST_ZERO_4K, 1)
    S.cnt[st.CNT_FOLIO_4K] += 1
    _install(S, V, ctx, vm, g, f, 1, private)
    return f


@kernel(cold=True)
def split_folio(S, g):
    """Split the huge folio containing global gfn ``g`` one level down (1G->2M or 2M->4K).

    Returns 1 if a folio was split. Mappings larger than the new folios must already be gone.
    """
    if S.r1_folio[g >> 18] != 0:
        S.r1_folio[g >> 18] = 0
        S.cnt[st.CNT_FOLIO_SPLIT] += 1
        return 1
    if S.r2_folio[g >> 9] != 0:
        S.r2_folio[g >> 9] = 0
        S.cnt[st.CNT_FOLIO_SPLIT] += 1
        return 1
    return 0


@kernel
def _free_span(S, V, ctx, vm, g, n):
    """Free ``n`` backed pages starting at ``g`` that form whole folios."""
    pfn = S.g_pfn[g]
    if S.frame_owner[pfn] == C.OWN_GUEST_PRIVATE:
        vo.gmem_invalidate(V, S, ctx, vm, g - S.vm_gfn_base[vm], pfn, n)
        clock.emit(S, C.POINT_GMEM_INVALIDATE, ctx, vm, -1, g - S.vm_gfn_base[vm], pfn, n, 0, 0, 0)
    host.free_frames(S, ctx, vm, pfn, n)
    for i in range(n):
        S.g_pfn[g + i] = -1
        S.g_attr[g + i] &= 0xFF ^ st.GA_PREPARED


@kernel(cold=True)
def release(S, V, ctx, vm, g, n, only_private):
    """Free the backing of ``n`` global gfns from ``g`` (guest_memfd punch or VMM discard).

    Huge folios wholly inside the range are freed whole; ones the range only partly covers are
    split first. With ``only_private`` set, pages backed by VMM (shared) memory are left alone,
    as a guest_memfd hole punch would. Returns the number of pages freed.
    """
    end = g + n
    freed = 0
    i = g
    while i < end:
        pfn = S.g_pfn[i]
        if pfn < 0:
            i += 1
            continue
        if only_private and S.frame_owner[pfn] != C.OWN_GUEST_PRIVATE:
            i += 1
            continue
        lvl = folio_level(S, i)
        span = 1
        if lvl == C.LVL_1G:
            span = P1G
        elif lvl == C.LVL_2M:
            span = P2M
        head = i & ~(span - 1)
        if span > 1 and (head < g or head + span > end):
            split_folio(S, i)
            continue
        _free_span(S, V, ctx, vm, head, span)
        if span == P1G:
            S.r1_folio[head >> 18] = 0
            for r in range(512):
                S.r2_folio[(head >> 9) + r] = 0
        elif span == P2M:
            S.r2_folio[head >> 9] = 0
        freed += span
        i = head + span
    return freed
