"""One kernel per operation kind: what KVM, the VMM and the guest do for each workload step.

Contexts: guest operations run on their vCPU's context; VM lifecycle, conversions, hole punches
and build-time loads run on the VM's VMM thread; host folio splits run in the VM's MMU-notifier
context; collapses in khugepaged. A host thread that wakes up to act on a VM first catches up
with the latest of that VM's vCPU clocks, so its lock waits are measured against what the vCPUs
are doing "now".
"""
from emu.jit import kernel
from emu.model import clock, gmem, host, pools, tdp_mmu
from emu.model import consts as C
from emu.model import state as st
from emu.model import vendor_ops as vo

P2M = 512
P1G = 262144


@kernel
def vcpu_ctx(S, vm, vcpu):
    return S.vm_vcpu_base[vm] + vcpu


@kernel
def host_ctx(S, vm, which):
    """The VMM thread (``which`` 0) or MMU-notifier context (1) of ``vm``, woken up now."""
    ctx = S.sc[st.SC_NVCPU] + 2 * vm + which
    clock.sync_clock(S, ctx, clock.vm_now(S, vm))
    return ctx


@kernel
def _set_private(S, g, private):
    was = (S.g_attr[g] & st.GA_PRIVATE) != 0
    if was == private:
        return
    d = 1 if private else -1
    if private:
        S.g_attr[g] |= st.GA_PRIVATE
    else:
        S.g_attr[g] &= 0xFF ^ st.GA_PRIVATE
    S.r2_private[g >> 9] += d
    S.r1_private[g >> 18] += d


@kernel
def _private_access(S, flags):
    return S.sc[st.SC_PRIVATE_MEMORY] != 0 and (flags & C.F_SHARED) == 0


@kernel(cold=True)
def vm_create(S, V, vm):
    ctx = host_ctx(S, vm, 0)
    clock.charge(S, ctx, S.cost[st.COST_VM_CREATE])
    S.vm_alive[vm] = 1
    S.cnt[st.CNT_VM_CREATED] += 1
    base = S.vm_gfn_base[vm]
    n = S.vm_pages[vm]
    if S.sc[st.SC_PRIVATE_MEMORY] != 0:
        # the VMM marks all guest memory private at start (KVM_SET_MEMORY_ATTRIBUTES)
        for i in range(n):
            S.g_attr[base + i] |= st.GA_PRIVATE
        for r in range(base >> 9, (base + n) >> 9):
            S.r2_private[r] = P2M
        for r in range(base >> 18, (base + n + P1G - 1) >> 18):
            S.r1_private[r] = min(P1G, base + n - (r << 18))
    return vo.vm_init(V, S, ctx, vm)


@kernel(cold=True)
def vcpu_create(S, V, vm, vcpu):
    ctx = host_ctx(S, vm, 0)
    gv = S.vm_vcpu_base[vm] + vcpu
    clock.charge(S, ctx, S.cost[st.COST_VCPU_CREATE])
    clock.sync_clock(S, gv, S.ctx_clock[ctx])
    S.vcpu_alive[gv] = 1
    return vo.vcpu_init(V, S, ctx, vm, vcpu)


@kernel(cold=True)
def vm_destroy(S, V, vm):
    """Tear a VM down in KVM's order: zap every leaf, let the vendor release what only leaves
    needed (``vm_pre_destroy``: TDX frees the HKID), free the page tables, free guest memory,
    then the vCPUs and the VM's vendor state."""
    ctx = host_ctx(S, vm, 0)
    base = S.vm_gfn_base[vm]
    n = S.vm_pages[vm]
    vb = S.vm_vcpu_base[vm]
    # the VM goes away once every vCPU thread has left the guest for good
    for i in range(S.vm_vcpus[vm]):
        if S.vcpu_alive[vb + i] != 0:
            vo.vcpu_exit(V, S, ctx, vm, i)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    # the whole range goes, so nothing needs splitting (tdx.md §4.2, item 3)
    tdp_mmu.zap_range(S, V, ctx, vm, -1, base, n, C.CAUSE_PUNCH, False)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    vo.vm_pre_destroy(V, S, ctx, vm)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    tdp_mmu.free_all_tables(S, V, ctx, vm)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    gmem.release(S, V, ctx, vm, base, n, False)
    for i in range(S.vm_vcpus[vm]):
        if S.vcpu_alive[vb + i] != 0:
            vo.vcpu_destroy(V, S, ctx, vm, i)
            for p in range(S.pool_count.shape[0]):
                if S.pool_scope[p] == st.SCOPE_VCPU:
                    pools.drain(S, ctx, vm, p, vb + i)
            S.vcpu_alive[vb + i] = 0
    for p in range(S.pool_count.shape[0]):
        if S.pool_scope[p] == st.SCOPE_VM:
            pools.drain(S, ctx, vm, p, vm)
    vo.vm_destroy(V, S, ctx, vm)
    for i in range(n):
        S.g_attr[base + i] = 0
    for r in range(base >> 9, (base + n + P2M - 1) >> 9):
        S.r2_private[r] = 0
        S.r2_flags[r] = 0
    for r in range(base >> 18, (base + n + P1G - 1) >> 18):
        S.r1_private[r] = 0
    S.vm_alive[vm] = 0
    S.cnt[st.CNT_VM_DESTROYED] += 1


@kernel(cold=True)
def build_add(S, V, vm, gfn, count):
    """Build-time load of the initial image, 4K at a time, through the vCPU-0 caches."""
    ctx = host_ctx(S, vm, 0)
    base = S.vm_gfn_base[vm]
    private = S.sc[st.SC_PRIVATE_MEMORY] != 0
    gv = S.vm_vcpu_base[vm]
    for k in range(count):
        g = base + gfn + k
        if S.g_map[g] != 0:
            continue
        if pools.topup(S, ctx, vm, C.POOL_SHADOW_PAGE, gv, -1) < 0:
            return -1
        vo.topup(V, S, ctx, vm, 0)
        pfn = gmem.get_pfn(S, V, ctx, vm, g, private)
        if pfn < 0:
            return -1
        clock.lock(S, ctx, C.LOCK_MMU, vm, False)
        status = tdp_mmu.ensure_tables(S, V, ctx, vm, 0, g, C.LVL_4K)
        if status == 0:
            status = tdp_mmu.map_leaf(S, V, ctx, vm, 0, g, C.LVL_4K, private)
        clock.unlock(S, ctx, C.LOCK_MMU, vm, False)
        if status != 0:
            return status
        clock.charge(S, ctx, S.cost[st.COST_COPY_4K])
        vo.build_add(V, S, ctx, vm, gfn + k, pfn)
        S.cnt[st.CNT_BUILD_PAGES] += 1
    return 0


@kernel(cold=True)
def convert(S, V, vm, gfn, count, to_shared):
    """KVM_SET_MEMORY_ATTRIBUTES from the VMM, then the discard of the old side's memory."""
    ctx = host_ctx(S, vm, 0)
    base = S.vm_gfn_base[vm]
    g = base + gfn
    clock.charge(S, ctx, S.cost[st.COST_IOCTL])
    pools.topup(S, ctx, vm, C.POOL_SPLIT, vm, -1)
    vo.topup(V, S, ctx, vm, -1)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    exact = S.sc[st.SC_EXACT_ZAP] != 0
    tdp_mmu.zap_range(S, V, ctx, vm, -1, g, count, C.CAUSE_CONVERT, exact)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    for i in range(count):
        _set_private(S, g + i, not to_shared)
    clock.charge(S, ctx, S.cost[st.COST_ATTR_PAGE] * count)
    # the VMM discards the side the pages left (QEMU punches guest_memfd going shared)
    gmem.release(S, V, ctx, vm, g, count, False)
    S.cnt[st.CNT_CONVERT_PAGES] += count
    return 0


@kernel(cold=True)
def guest_convert(S, V, vm, vcpu, gfn, count, to_shared):
    """A conversion the guest asked for: its side (``page_state_change``: MapGPA, an SNP
    page-state change) runs on vCPU ``vcpu`` (vCPU 0 when the operation names none) before
    the VMM converts, so the VMM starts once the guest's request is out."""
    v = vcpu if vcpu >= 0 else 0
    vo.page_state_change(V, S, vcpu_ctx(S, vm, v), vm, v, gfn, count, to_shared)
    return convert(S, V, vm, gfn, count, to_shared)


@kernel(cold=True)
def punch(S, V, vm, gfn, count):
    """fallocate(PUNCH_HOLE) on guest_memfd: zap exactly, then free the private folios."""
    ctx = host_ctx(S, vm, 0)
    g = S.vm_gfn_base[vm] + gfn
    clock.charge(S, ctx, S.cost[st.COST_IOCTL])
    pools.topup(S, ctx, vm, C.POOL_SPLIT, vm, -1)
    vo.topup(V, S, ctx, vm, -1)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    exact = S.sc[st.SC_EXACT_ZAP] != 0
    # only private pages live in guest_memfd; shared ones are VMM memory and stay mapped
    i = 0
    while i < count:
        j = i
        while j < count and (S.g_attr[g + j] & st.GA_PRIVATE) != 0:
            j += 1
        if j > i:
            tdp_mmu.zap_range(S, V, ctx, vm, -1, g + i, j - i, C.CAUSE_PUNCH, exact)
            i = j
        else:
            i += 1
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    S.cnt[st.CNT_PUNCH_PAGES] += gmem.release(S, V, ctx, vm, g, count, True)
    return 0


@kernel(cold=True)
def folio_split(S, V, vm, gfn):
    """The host splits the huge folio at ``gfn``: KVM must split or zap larger mappings first."""
    g = S.vm_gfn_base[vm] + gfn
    if gmem.folio_level(S, g) == C.LVL_4K or S.g_pfn[g] < 0:
        return 0
    if S.vm_backing[vm] != C.BACK_THP:
        # hugetlb folios are not split by the host
        S.cnt[st.CNT_FOLIO_SPLIT_REFUSED] += 1
        return 0
    ctx = host_ctx(S, vm, 1)
    h = g & ~(P2M - 1)
    pools.topup(S, ctx, vm, C.POOL_SPLIT, vm, -1)
    vo.topup(V, S, ctx, vm, -1)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    m = S.g_map[h]
    if m == C.LVL_2M + 1:
        if S.sc[st.SC_EXACT_ZAP] != 0:
            tdp_mmu.split_leaf(S, V, ctx, vm, -1, h, C.LVL_2M, C.CAUSE_FOLIO_SPLIT)
        else:
            tdp_mmu.zap_range(S, V, ctx, vm, -1, h, P2M, C.CAUSE_FOLIO_SPLIT, False)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    gmem.split_folio(S, g)
    return 0


@kernel(cold=True)
def folio_collapse(S, V, vm, gfn):
    """khugepaged collapses a 2M range of 4K folios into one huge folio.

    Only VMM (shared) memory can be collapsed: guest_memfd memory cannot be migrated, so a
    range with private pages is refused (``reference/snp.md`` §4.6); so is memory that is not
    THP (khugepaged only scans THP-enabled mappings; hugetlb and 4K-only memory stay as they
    are). The MMU notifier zaps the range, the pages are copied into the new folio, and the
    next fault may map it at 2M.
    """
    g = S.vm_gfn_base[vm] + gfn
    h = g & ~(P2M - 1)
    if S.r2_folio[h >> 9] != 0:
        return 0
    if S.vm_backing[vm] != C.BACK_THP or S.r2_private[h >> 9] != 0 \
            or h + P2M > S.vm_gfn_base[vm] + S.vm_pages[vm]:
        S.cnt[st.CNT_COLLAPSE_REFUSED] += 1
        return 0
    for i in range(P2M):
        if S.g_pfn[h + i] < 0:
            S.cnt[st.CNT_COLLAPSE_REFUSED] += 1
            return 0
    kh = S.ctx_kind.shape[0] - 1
    clock.sync_clock(S, kh, clock.vm_now(S, vm))
    f = host.alloc_2m(S, kh, vm, C.OWN_GUEST_SHARED, C.SITE_SHARED_FOLIO)
    if f < 0:
        S.cnt[st.CNT_COLLAPSE_REFUSED] += 1
        return 0
    clock.lock(S, kh, C.LOCK_MMU, vm, True)
    tdp_mmu.zap_range(S, V, kh, vm, -1, h, P2M, C.CAUSE_COLLAPSE, False)
    clock.unlock(S, kh, C.LOCK_MMU, vm, True)
    for i in range(P2M):
        host.free_frames(S, kh, vm, S.g_pfn[h + i], 1)
        S.g_pfn[h + i] = f + i
    clock.charge(S, kh, S.cost[st.COST_COPY_4K] * P2M)
    S.r2_folio[h >> 9] = 1
    S.r2_flags[h >> 9] |= st.R2_COLLAPSED
    S.cnt[st.CNT_FOLIO_COLLAPSE] += 1
    return 0


@kernel
def access(S, V, vm, vcpu, gfn, flags):
    """A guest access: free when mapped, else an exit and a fault."""
    ctx = vcpu_ctx(S, vm, vcpu)
    g = S.vm_gfn_base[vm] + gfn
    private = _private_access(S, flags)
    if S.sc[st.SC_PRIVATE_MEMORY] != 0 and private != ((S.g_attr[g] & st.GA_PRIVATE) != 0):
        # the access disagrees with the page's attribute: KVM exits to the VMM
        # (KVM_EXIT_MEMORY_FAULT), which converts the page (an implicit conversion)
        S.cnt[st.CNT_EXITS] += 1
        S.cnt[st.CNT_IMPLICIT_CONVERT] += 1
        clock.charge(S, ctx, S.cost[st.COST_EXIT])
        vo.vcpu_exit(V, S, ctx, vm, vcpu)
        convert(S, V, vm, gfn, 1, not private)
        clock.sync_clock(S, ctx, S.ctx_clock[host_ctx(S, vm, 0)])
        vo.vcpu_enter(V, S, ctx, vm, vcpu)
    if S.g_map[g] != 0:
        S.cnt[st.CNT_ACCESS_MAPPED] += 1
        clock.charge(S, ctx, S.cost[st.COST_ACCESS])
        return 0
    S.cnt[st.CNT_EXITS] += 1
    clock.charge(S, ctx, S.cost[st.COST_EXIT])
    vo.vcpu_exit(V, S, ctx, vm, vcpu)
    r = tdp_mmu.fault(S, V, ctx, vm, vcpu, g, private, C.LVL_1G)
    vo.vcpu_enter(V, S, ctx, vm, vcpu)
    if r < 0:
        return -1
    return 0


@kernel
def _touch_span(S, V, vm, vcpu, gfn, level, flags):
    """What accepting means for a vendor without accept: touching every page of the span."""
    n = tdp_mmu._span(level)
    g = S.vm_gfn_base[vm] + gfn
    for i in range(n):
        if S.g_map[g + i] == 0:
            if access(S, V, vm, vcpu, gfn + i, flags) < 0:
                return -1
        else:
            S.cnt[st.CNT_ACCESS_MAPPED] += 1
            clock.charge(S, vcpu_ctx(S, vm, vcpu), S.cost[st.COST_ACCESS])
    return 0


@kernel(cold=True)
def _split_for_accept(S, V, ctx, vm, vcpu, g, level):
    """The guest accepted below the host mapping: split it under write ``mmu_lock``."""
    m = S.g_map[g]
    if m == 0:
        return 0
    cur = m - 1
    if cur <= level:
        return 0
    gv = S.vm_vcpu_base[vm] + vcpu
    if pools.topup(S, ctx, vm, C.POOL_SHADOW_PAGE, gv, -1) < 0:
        return -1
    vo.topup(V, S, ctx, vm, vcpu)
    clock.lock(S, ctx, C.LOCK_MMU, vm, True)
    status = 0
    while status == 0 and S.g_map[g] - 1 > level:
        lv = S.g_map[g] - 1
        head = g & ~(tdp_mmu._span(lv) - 1)
        status = tdp_mmu.split_leaf(S, V, ctx, vm, vcpu, head, lv, C.CAUSE_GUEST_ACCEPT)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    return status


MISMATCH = -2
RETRY = -3


@kernel
def _accept_react(S, V, ctx, vm, vcpu, gfn, level, flags, r):
    """Count the vendor's answer ``r`` to one accept and do what the host does about it: fault
    the range in, or split a larger mapping (then ``RETRY``); ``MISMATCH`` asks for smaller
    accepts; 0 is done, -1 failed."""
    if r == C.ACCEPT_UNSUPPORTED:
        return _touch_span(S, V, vm, vcpu, gfn, level, flags)
    S.cnt_accept[r] += 1
    clock.emit(S, C.POINT_ACCEPT, ctx, vm, vcpu, gfn, level, r, 0, 0, 0)
    if r == C.ACCEPT_OK or r == C.ACCEPT_ALREADY:
        return 0
    g = S.vm_gfn_base[vm] + gfn
    if r == C.ACCEPT_NOT_MAPPED:
        S.cnt[st.CNT_EXITS] += 1
        clock.charge(S, ctx, S.cost[st.COST_EXIT])
        vo.vcpu_exit(V, S, ctx, vm, vcpu)
        lvl = tdp_mmu.fault(S, V, ctx, vm, vcpu, g, _private_access(S, flags), level)
        vo.vcpu_enter(V, S, ctx, vm, vcpu)
        return -1 if lvl < 0 else RETRY
    if r == C.ACCEPT_EXIT_SPLIT:
        S.cnt[st.CNT_EXITS] += 1
        clock.charge(S, ctx, S.cost[st.COST_EXIT])
        vo.vcpu_exit(V, S, ctx, vm, vcpu)
        status = _split_for_accept(S, V, ctx, vm, vcpu, g, level)
        vo.vcpu_enter(V, S, ctx, vm, vcpu)
        return -1 if status != 0 else RETRY
    if r == C.ACCEPT_SIZE_MISMATCH:
        return MISMATCH
    clock.error(S, ctx, vm, C.ERR_GUEST, r, level)
    return -1


@kernel
def _accept_unit(S, V, vm, vcpu, gfn, level, flags):
    """One accept at one level, with the host reacting; ``MISMATCH`` asks for smaller ones.

    Written without a loop on purpose: the common case is two attempts (the first exits, the
    host faults the range in, the second succeeds), and a retry loop here made LLVM hoist the
    address arithmetic of everything the loop body touches in front of every accept."""
    ctx = vcpu_ctx(S, vm, vcpu)
    r = _accept_react(S, V, ctx, vm, vcpu, gfn, level, flags,
                      vo.guest_accept(V, S, ctx, vm, vcpu, gfn, level))
    if r != RETRY:
        return r
    r = vo.guest_accept(V, S, ctx, vm, vcpu, gfn, level)
    if r == C.ACCEPT_OK or r == C.ACCEPT_ALREADY:
        S.cnt_accept[r] += 1
        clock.emit(S, C.POINT_ACCEPT, ctx, vm, vcpu, gfn, level, r, 0, 0, 0)
        return 0
    return _accept_retries(S, V, ctx, vm, vcpu, gfn, level, flags, r)


@kernel(cold=True)
def _accept_retries(S, V, ctx, vm, vcpu, gfn, level, flags, r):
    """The rare accepts that need a third attempt or more (a fault, then a split): at most
    eight in all, as a guarantee against a vendor that never settles."""
    for _ in range(6):
        status = _accept_react(S, V, ctx, vm, vcpu, gfn, level, flags, r)
        if status != RETRY:
            return status
        r = vo.guest_accept(V, S, ctx, vm, vcpu, gfn, level)
    status = _accept_react(S, V, ctx, vm, vcpu, gfn, level, flags, r)
    if status != RETRY:
        return status
    clock.error(S, ctx, vm, C.ERR_GUEST, -1, level)
    return -1


@kernel
def accept(S, V, vm, vcpu, gfn, level, flags):
    """The guest accepts (TDX) or validates (SNP) memory at ``level``; the vendor decides how.

    The host side follows the vendor's answer: fault the range in (at most at the accept level),
    split a larger mapping (``CAUSE_GUEST_ACCEPT``), or, after a size mismatch, the guest
    retries one level down over the same range, as the Linux guest does.
    """
    r = _accept_unit(S, V, vm, vcpu, gfn, level, flags)
    if r != MISMATCH:
        return r
    return _accept_smaller(S, V, vm, vcpu, gfn, level, flags)


@kernel(cold=True)
def _accept_smaller(S, V, vm, vcpu, gfn, level, flags):
    """After a size mismatch the guest accepts the same range one level down (and, for a 1G
    request over 4K mappings, at 4K)."""
    if level == C.LVL_4K:
        clock.error(S, vcpu_ctx(S, vm, vcpu), vm, C.ERR_GUEST, C.ACCEPT_SIZE_MISMATCH, level)
        return -1
    step = tdp_mmu._span(level - 1)
    for i in range(0, tdp_mmu._span(level), step):
        r = _accept_unit(S, V, vm, vcpu, gfn + i, level - 1, flags)
        if r == MISMATCH and level - 1 > C.LVL_4K:
            for j in range(P2M):
                if _accept_unit(S, V, vm, vcpu, gfn + i + j, C.LVL_4K, flags) < 0:
                    return -1
        elif r < 0:
            return -1
    return 0


@kernel(cold=True)
def idle(S, V, vm, ns):
    """The VM's vCPUs run for ``ns`` without exits: their clocks move, no work is charged."""
    base = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        if S.vcpu_alive[base + i] != 0:
            S.ctx_clock[base + i] += ns
    return 0


@kernel(cold=True)
def recover(S, V, vm, gfn, count):
    """KVM huge-page recovery: replace fully populated page tables by huge leaves."""
    ctx = host_ctx(S, vm, 0)
    g0 = S.vm_gfn_base[vm] + gfn
    clock.lock(S, ctx, C.LOCK_MMU, vm, False)
    for r in range(g0 >> 9, (g0 + count) >> 9):
        if S.r2_pt[r] >= 0 and S.r2_leaves[r] == P2M:
            tdp_mmu.merge_leaves(S, V, ctx, vm, r << 9, C.LVL_2M, C.CAUSE_RECOVERY)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, False)
    return 0
