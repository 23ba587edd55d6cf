"""The TDP MMU: faults, leaf mappings, page tables, zaps, splits and merges.

State is flat: ``S.g_map[g]`` holds ``level + 1`` of the leaf mapping global gfn ``g`` (0: not
mapped), so a 2M leaf writes 512 bytes and any lookup is one load. Page tables are real host
frames recorded per covered range: the page table holding 4K leaves of a 2M range
(``S.r2_pt``), the one holding 2M entries of a 1G range (``S.r1_pd``), the one holding 1G entries
of a 512G range of the VM (``S.q_pdpt[vm]``) and the VM's root (``S.vm_root``).

KVM's rules (``reference/tdx.md`` §4.1, ``reference/snp.md`` §3, KVM's
``kvm_mmu_max_mapping_level``): a leaf is never larger than its folio, than the vendor's maximum
(``gmem_max_mapping_level`` for private memory), than a range whose 4K pages mix private and
shared, or than a range a vendor inhibited; it is aligned to its size and lies inside the VM.

Vendors that mirror page tables into firmware (``external_spt``, TDX) see every table linked and
every leaf set through ``link_external_spt``/``set_external_spte``, preceded by ``phys_prepare``
with the vCPU at hand, as in the RFC's patch (``reference/seed-thread-dpamt-phys-prepare.txt``).
Vendors with ``exact_zap`` (private memory that cannot be refaulted once accepted) get huge
leaves that cross a zapped range *split*, never zapped whole.
"""
from emu.jit import kernel
from emu.model import clock, gmem, host, pools
from emu.model import consts as C
from emu.model import state as st
from emu.model import vendor_ops as vo

P2M = 512
P1G = 262144
PAGES = (1, 512, 262144)


@kernel
def _span(level):
    if level == C.LVL_1G:
        return P1G
    if level == C.LVL_2M:
        return P2M
    return 1


@kernel
def _take_table(S, V, ctx, vm, vcpu, gfn, level, site):
    """Allocate a page table whose entries map ``level`` pages, linked at ``gfn``.

    Pages come from the vCPU's caches, or the VM's split cache on paths without a vCPU.
    Returns the KVM page-table frame; -1 if the vendor refused to link it.
    """
    if vcpu >= 0:
        gv = S.vm_vcpu_base[vm] + vcpu
        pt = pools.take(S, ctx, vm, C.POOL_SHADOW_PAGE, gv, C.OWN_KVM_PT, site)
    else:
        pt = pools.take(S, ctx, vm, C.POOL_SPLIT, vm, C.OWN_KVM_PT, site)
    if pt < 0:
        return -1
    S.cnt[st.CNT_PT_ALLOC] += 1
    clock.emit(S, C.POINT_PT_ALLOC, ctx, vm, vcpu, level, pt, 0, 0, 0, 0)
    return pt


@kernel(cold=True)
def _link(S, V, ctx, vm, vcpu, gfn, level, site):
    """Make and link one table level (KVM page + external page for mirroring vendors)."""
    pt = _take_table(S, V, ctx, vm, vcpu, gfn, level, site)
    if pt < 0:
        return -1
    if S.sc[st.SC_EXTERNAL_SPT] != 0:
        ext = vo.alloc_external_spt(V, S, ctx, vm, vcpu, level, site)
        if ext < 0:
            host.free_frames_one(S, ctx, vm, pt)
            return -1
        status = vo.phys_prepare(V, S, ctx, vm, vcpu, ext, level)
        if status == 0:
            status = vo.link_external_spt(V, S, ctx, vm, vcpu, gfn, level, ext)
            if status != 0:
                vo.phys_cleanup(V, S, ctx, vm, vcpu, ext, level)
        if status != 0:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, -1, status)
            vo.release_external_spt(V, S, ctx, vm, ext)
            host.free_frames_one(S, ctx, vm, pt)
            return -1
    clock.charge(S, ctx, S.cost[st.COST_SPTE])
    return pt


@kernel
def ensure_tables(S, V, ctx, vm, vcpu, g, level):
    """Make sure every table above a leaf at ``level`` for global gfn ``g`` exists.

    Returns 0, or -1 when a table could not be had.
    """
    base = S.vm_gfn_base[vm]
    if S.vm_root[vm] < 0:
        root = _take_table(S, V, ctx, vm, vcpu, 0, 3, C.SITE_ROOT)
        if root < 0:
            return -1
        S.vm_root[vm] = root
    # a VM's PDPTs are its own: indexed by the VM-relative gfn, as slots are only 1G aligned
    q = (g - base) >> 27
    if S.q_pdpt[vm, q] < 0:
        pt = _link(S, V, ctx, vm, vcpu, q << 27, C.LVL_1G, C.SITE_PT_PAGE)
        if pt < 0:
            return -1
        S.q_pdpt[vm, q] = pt
    if level <= C.LVL_2M:
        r1 = g >> 18
        if S.r1_pd[r1] < 0:
            pt = _link(S, V, ctx, vm, vcpu, (r1 << 18) - base, C.LVL_2M, C.SITE_PT_PAGE)
            if pt < 0:
                return -1
            S.r1_pd[r1] = pt
    if level == C.LVL_4K:
        r2 = g >> 9
        if S.r2_pt[r2] < 0:
            pt = _link(S, V, ctx, vm, vcpu, (r2 << 9) - base, C.LVL_4K, C.SITE_PT_PAGE)
            if pt < 0:
                return -1
            S.r2_pt[r2] = pt
    return 0


@kernel
def _set_leaf_bytes(S, g, level):
    n = _span(level)
    v = level + 1
    for i in range(n):
        S.g_map[g + i] = v


@kernel
def _count_leaf(S, g, level, delta):
    S.mapped[level] += delta
    if level == C.LVL_4K:
        S.r2_leaves[g >> 9] += delta


@kernel
def map_leaf(S, V, ctx, vm, vcpu, g, level, private):
    """Install the leaf for global gfn ``g`` (aligned to ``level``); 0 on success."""
    pfn = S.g_pfn[g]
    base = S.vm_gfn_base[vm]
    if private and S.sc[st.SC_EXTERNAL_SPT] != 0:
        status = vo.phys_prepare(V, S, ctx, vm, vcpu, pfn, level)
        if status == 0:
            status = vo.set_external_spte(V, S, ctx, vm, vcpu, g - base, level, pfn)
            if status != 0:
                vo.phys_cleanup(V, S, ctx, vm, vcpu, pfn, level)
        if status != 0:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, -1, status)
            return status
    elif private:
        status = vo.set_external_spte(V, S, ctx, vm, vcpu, g - base, level, pfn)
        if status != 0:
            return status
    _set_leaf_bytes(S, g, level)
    _count_leaf(S, g, level, 1)
    S.cnt_map[level] += 1
    clock.charge(S, ctx, S.cost[st.COST_SPTE])
    clock.emit(S, C.POINT_MAP, ctx, vm, vcpu, g - base, level, pfn, private, 0, 0)
    return 0


@kernel
def max_level(S, V, vm, g, private, cap):
    """The largest level KVM may map global gfn ``g`` at (KVM's max-mapping-level rules)."""
    lvl = gmem.folio_level(S, g)
    if cap < lvl:
        lvl = cap
    if S.sc[st.SC_VENDOR_MAX_LEVEL] < lvl:
        lvl = S.sc[st.SC_VENDOR_MAX_LEVEL]
    if private and lvl > C.LVL_4K:
        v = vo.gmem_max_mapping_level(V, S, vm, g - S.vm_gfn_base[vm], S.g_pfn[g])
        if v < lvl:
            lvl = v
    end = S.vm_gfn_base[vm] + S.vm_pages[vm]
    if lvl == C.LVL_1G:
        h = g & ~(P1G - 1)
        p = S.r1_private[g >> 18]
        if h + P1G > end or (p != 0 and p != P1G):
            lvl = C.LVL_2M
        else:
            for r in range(512):
                if S.r2_flags[(h >> 9) + r] & st.R2_NO_HUGE:
                    lvl = C.LVL_2M
                    break
    if lvl == C.LVL_2M:
        h = g & ~(P2M - 1)
        p = S.r2_private[g >> 9]
        if h + P2M > end or (p != 0 and p != P2M) or (S.r2_flags[g >> 9] & st.R2_NO_HUGE):
            lvl = C.LVL_4K
    return lvl


@kernel
def zap_leaf(S, V, ctx, vm, g, level, cause):
    """Remove the leaf at global gfn ``g`` (its head) at ``level``; 0 on success."""
    base = S.vm_gfn_base[vm]
    pfn = S.g_pfn[g]
    private = (S.g_attr[g] & st.GA_PRIVATE) != 0 and S.sc[st.SC_PRIVATE_MEMORY] != 0
    if private:
        status = vo.remove_external_spte(V, S, ctx, vm, g - base, level, pfn)
        if status != 0:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, -1, status)
            return status
        if S.sc[st.SC_EXTERNAL_SPT] != 0:
            vo.phys_cleanup(V, S, ctx, vm, -1, pfn, level)
    n = _span(level)
    for i in range(n):
        S.g_map[g + i] = 0
    _count_leaf(S, g, level, -1)
    S.cnt_zap[level] += 1
    clock.charge(S, ctx, S.cost[st.COST_SPTE])
    clock.emit(S, C.POINT_ZAP, ctx, vm, -1, g - base, level, cause, 0, 0, 0)
    return 0


@kernel(cold=True)
def flush_tlbs(S, ctx, vm):
    """Remote TLB flush for a VM: every live vCPU is kicked out and pays an exit."""
    S.cnt[st.CNT_TLB_FLUSH] += 1
    clock.charge(S, ctx, S.cost[st.COST_TLB_FLUSH])
    base = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        if S.vcpu_alive[base + i] != 0:
            S.cnt[st.CNT_KICKS] += 1
            clock.charge(S, ctx, S.cost[st.COST_KICK])
            clock.charge(S, base + i, S.cost[st.COST_EXIT])


@kernel(cold=True)
def split_leaf(S, V, ctx, vm, vcpu, g, level, cause):
    """Split the huge leaf at global gfn ``g`` (its head, at ``level``) into 512 leaves.

    The caller holds ``mmu_lock`` for write and has topped up the cache the table comes from.
    Returns 0, or non-zero when the split could not be done. What the split cost (firmware
    calls and time, kicks, flushes, allocations in atomic context, page-table and firmware
    metadata pages, virtual time) is added to ``S.split_cost[cause]``.
    """
    fw_calls = S.fw_count.sum()
    fw_ns = S.fw_ns.sum()
    fw_failed = S.fw_fail.sum()
    kicks = S.cnt[st.CNT_KICKS]
    flushes = S.cnt[st.CNT_TLB_FLUSH]
    atomic = S.err_count[C.ERR_ATOMIC_ALLOC]
    pages = _split_pages(S)
    t0 = S.ctx_clock[ctx]
    status = _split_leaf(S, V, ctx, vm, vcpu, g, level, cause)
    cost = S.split_cost[cause]
    cost[st.SPLIT_FW_CALLS] += S.fw_count.sum() - fw_calls
    cost[st.SPLIT_FW_NS] += S.fw_ns.sum() - fw_ns
    cost[st.SPLIT_FW_FAILED] += S.fw_fail.sum() - fw_failed
    cost[st.SPLIT_KICKS] += S.cnt[st.CNT_KICKS] - kicks
    cost[st.SPLIT_TLB_FLUSHES] += S.cnt[st.CNT_TLB_FLUSH] - flushes
    cost[st.SPLIT_ATOMIC_ALLOCS] += S.err_count[C.ERR_ATOMIC_ALLOC] - atomic
    cost[st.SPLIT_EXTRA_PAGES] += _split_pages(S) - pages
    cost[st.SPLIT_NS] += S.ctx_clock[ctx] - t0
    if status != 0:
        cost[st.SPLIT_FAILED] += 1
    return status


@kernel(cold=True)
def _split_pages(S):
    """Pages a split can add: KVM's and the firmware's page tables and metadata."""
    return (S.own_pages[C.OWN_KVM_PT] + S.own_pages[C.OWN_FW_PT] + S.own_pages[C.OWN_FW_META]
            + S.own_pages[C.OWN_FW_CONTROL])


@kernel(cold=True)
def _split_leaf(S, V, ctx, vm, vcpu, g, level, cause):
    base = S.vm_gfn_base[vm]
    child = level - 1
    ext = -1
    site = C.SITE_SPLIT_PT
    pt = _take_table(S, V, ctx, vm, vcpu, g - base, child, site)
    if pt < 0:
        S.cnt[st.CNT_SPLIT_FAILED] += 1
        return -1
    if S.sc[st.SC_EXTERNAL_SPT] != 0:
        ext = vo.alloc_external_spt(V, S, ctx, vm, vcpu, child, site)
        if ext < 0:
            host.free_frames_one(S, ctx, vm, pt)
            S.cnt[st.CNT_SPLIT_FAILED] += 1
            return -1
        status = vo.phys_prepare(V, S, ctx, vm, vcpu, ext, child)
        if status != 0:
            vo.release_external_spt(V, S, ctx, vm, ext)
            host.free_frames_one(S, ctx, vm, pt)
            S.cnt[st.CNT_SPLIT_FAILED] += 1
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, -1, status)
            return status
    status = vo.split_external_spte(V, S, ctx, vm, vcpu, g - base, level, ext, cause)
    if status != 0:
        if ext >= 0:
            vo.phys_cleanup(V, S, ctx, vm, vcpu, ext, child)
            vo.release_external_spt(V, S, ctx, vm, ext)
        host.free_frames_one(S, ctx, vm, pt)
        S.cnt[st.CNT_SPLIT_FAILED] += 1
        return status
    if level == C.LVL_2M:
        S.r2_pt[g >> 9] = pt
    else:
        S.r1_pd[g >> 18] = pt
    _count_leaf(S, g, level, -1)
    n = _span(level)
    step = _span(child)
    for i in range(0, n, step):
        _count_leaf(S, g + i, child, 1)
    # every gfn the huge leaf mapped is now mapped by a child leaf
    v = child + 1
    for i in range(n):
        S.g_map[g + i] = v
    S.cnt_split[cause, level] += 1
    clock.charge(S, ctx, S.cost[st.COST_SPTE] * 512)
    clock.emit(S, C.POINT_SPLIT, ctx, vm, vcpu, g - base, level, cause, 0, 0, 0)
    return 0


@kernel(cold=True)
def free_table(S, V, ctx, vm, g, level, pt):
    """Free a page table (holding ``level`` entries at global gfn ``g``).

    The mirrored (external) table goes first, synchronously in the caller's context, as KVM's
    ``handle_removed_pt`` calls ``free_external_spt``; KVM's own page is freed after an RCU
    grace period, and the RCU context pays for that.
    """
    base = S.vm_gfn_base[vm]
    rcu = S.ctx_kind.shape[0] - 2
    if S.sc[st.SC_EXTERNAL_SPT] != 0:
        vo.free_external_spt(V, S, ctx, vm, g - base, level, pt)
    clock.sync_clock(S, rcu, S.ctx_clock[ctx])
    host.free_frames_one(S, rcu, vm, pt)
    clock.charge(S, rcu, S.cost[st.COST_RCU_FREE])
    S.cnt[st.CNT_PT_FREE] += 1
    S.cnt[st.CNT_RCU_FREES] += 1
    clock.emit(S, C.POINT_PT_FREE, rcu, vm, -1, level, pt, 0, 0, 0, 0)


@kernel(cold=True)
def merge_leaves(S, V, ctx, vm, g, level, cause):
    """Replace the table under the ``level`` entry at global gfn ``g`` by one huge leaf.

    Every child must be a leaf one level down (all mapped, or none mapped when the table is
    being replaced on a fault); the folio, attributes and the vendor must allow ``level``.
    Returns 0 when merged.
    """
    base = S.vm_gfn_base[vm]
    private = (S.g_attr[g] & st.GA_PRIVATE) != 0 and S.sc[st.SC_PRIVATE_MEMORY] != 0
    if max_level(S, V, vm, g, private, level) < level:
        S.cnt[st.CNT_MERGE_REFUSED] += 1
        return -1
    status = vo.merge_external_spte(V, S, ctx, vm, g - base, level, cause)
    if status != 0:
        S.cnt[st.CNT_MERGE_REFUSED] += 1
        return status
    child = level - 1
    n = _span(level)
    step = _span(child)
    had = 0
    for i in range(0, n, step):
        if S.g_map[g + i] != 0:
            _count_leaf(S, g + i, child, -1)
            had += 1
    if level == C.LVL_2M:
        pt = S.r2_pt[g >> 9]
        S.r2_pt[g >> 9] = -1
    else:
        pt = S.r1_pd[g >> 18]
        S.r1_pd[g >> 18] = -1
        for r in range(512):
            p2 = S.r2_pt[(g >> 9) + r]
            if p2 >= 0:
                S.r2_pt[(g >> 9) + r] = -1
                free_table(S, V, ctx, vm, g + r * P2M, C.LVL_4K, p2)
    _set_leaf_bytes(S, g, level)
    _count_leaf(S, g, level, 1)
    S.cnt_map[level] += 1
    S.cnt_merge[cause, level] += 1
    clock.charge(S, ctx, S.cost[st.COST_SPTE])
    free_table(S, V, ctx, vm, g, child, pt)
    if had > 0:
        flush_tlbs(S, ctx, vm)
    clock.emit(S, C.POINT_MERGE, ctx, vm, -1, g - base, level, cause, 0, 0, 0)
    return 0


@kernel
def fault(S, V, ctx, vm, vcpu, g, private, cap):
    """Handle a TDP fault on global gfn ``g`` from ``vcpu``; returns the level mapped or -1.

    The order is KVM's: top up the caches (may sleep; the fault fails if they cannot reach
    their minimum), fault in the pfn (guest_memfd or VMM memory), take ``mmu_lock`` for read,
    build missing tables, install the leaf.
    """
    base = S.vm_gfn_base[vm]
    gv = S.vm_vcpu_base[vm] + vcpu
    S.cnt[st.CNT_FAULTS] += 1
    if private:
        S.cnt[st.CNT_FAULT_PRIVATE] += 1
    clock.charge(S, ctx, S.cost[st.COST_FAULT])
    # KVM's fault returns -ENOMEM when the top-up fails, before taking mmu_lock
    if pools.topup(S, ctx, vm, C.POOL_SHADOW_PAGE, gv, -1) < 0:
        return -1
    vo.topup(V, S, ctx, vm, vcpu)
    pfn = gmem.get_pfn(S, V, ctx, vm, g, private)
    if pfn < 0:
        return -1
    lvl = max_level(S, V, vm, g, private, cap)
    clock.lock(S, ctx, C.LOCK_MMU, vm, False)
    # a table below the target level: KVM installs the huge leaf over it, the table's leaves
    # going with it, except on mirror roots (exact-zap vendors), where promotion in the fault
    # path is prevented and the fault maps at the table's level instead (tdx.md §4.1)
    if lvl == C.LVL_1G and S.r1_pd[g >> 18] >= 0:
        lvl = C.LVL_2M
    replaced = False
    if lvl == C.LVL_2M and S.r2_pt[g >> 9] >= 0:
        h2 = g & ~(P2M - 1)
        collapsed = (S.r2_flags[g >> 9] & st.R2_COLLAPSED) != 0
        if S.sc[st.SC_EXACT_ZAP] != 0:
            lvl = C.LVL_4K
        elif S.r2_leaves[g >> 9] == 0:
            free_table(S, V, ctx, vm, h2, C.LVL_4K, S.r2_pt[g >> 9])
            S.r2_pt[g >> 9] = -1
            S.cnt[st.CNT_PT_REPLACED] += 1
            if collapsed:
                S.cnt_merge[C.CAUSE_COLLAPSE, C.LVL_2M] += 1
        else:
            cause = C.CAUSE_COLLAPSE if collapsed else C.CAUSE_FAULT
            if merge_leaves(S, V, ctx, vm, h2, C.LVL_2M, cause) == 0:
                S.cnt[st.CNT_PT_REPLACED] += 1
                replaced = True
            else:
                lvl = C.LVL_4K
    h = g & ~(_span(lvl) - 1)
    S.r2_flags[g >> 9] &= 0xFF ^ st.R2_COLLAPSED
    status = 0
    if not replaced:
        status = ensure_tables(S, V, ctx, vm, vcpu, h, lvl)
        if status == 0:
            status = map_leaf(S, V, ctx, vm, vcpu, h, lvl, private)
    clock.unlock(S, ctx, C.LOCK_MMU, vm, False)
    if status != 0:
        return -1
    clock.emit(S, C.POINT_FAULT, ctx, vm, vcpu, g - base, lvl, private, pfn, 0, 0)
    return lvl


@kernel(cold=True)
def zap_range(S, V, ctx, vm, vcpu, g, n, cause, exact):
    """Zap every leaf mapping global gfns ``[g, g + n)``; the caller holds ``mmu_lock`` (write).

    A huge leaf crossing the range's edge is split first when ``exact`` (it must survive outside
    the range), and zapped whole otherwise. Flushes TLBs once if anything was zapped. Returns
    the number of leaves zapped, or -1 if a split failed.
    """
    end = g + n
    zapped = 0
    i = g
    while i < end:
        # skip 2M ranges with nothing mapped in one step
        if (i & (P2M - 1)) == 0 and S.g_map[i] == 0 and S.r2_leaves[i >> 9] == 0:
            i += P2M
            continue
        m = S.g_map[i]
        if m == 0:
            i += 1
            continue
        level = m - 1
        span = _span(level)
        head = i & ~(span - 1)
        if span > 1 and (head < g or head + span > end) and exact:
            if split_leaf(S, V, ctx, vm, vcpu, head, level, cause) != 0:
                return -1
            continue
        if zap_leaf(S, V, ctx, vm, head, level, cause) == 0:
            zapped += 1
        i = head + span
    if zapped > 0:
        flush_tlbs(S, ctx, vm)
    return zapped


@kernel(cold=True)
def free_all_tables(S, V, ctx, vm):
    """Free every page table of a VM (teardown, after every leaf is gone)."""
    base = S.vm_gfn_base[vm]
    n = S.vm_pages[vm]
    for r in range(base >> 9, (base + n + P2M - 1) >> 9):
        if S.r2_pt[r] >= 0:
            free_table(S, V, ctx, vm, r << 9, C.LVL_4K, S.r2_pt[r])
            S.r2_pt[r] = -1
    for r in range(base >> 18, (base + n + P1G - 1) >> 18):
        if S.r1_pd[r] >= 0:
            free_table(S, V, ctx, vm, r << 18, C.LVL_2M, S.r1_pd[r])
            S.r1_pd[r] = -1
    for q in range((n + (1 << 27) - 1) >> 27):
        if S.q_pdpt[vm, q] >= 0:
            free_table(S, V, ctx, vm, base + (q << 27), C.LVL_1G, S.q_pdpt[vm, q])
            S.q_pdpt[vm, q] = -1
    if S.vm_root[vm] >= 0:
        host.free_frames_one(S, ctx, vm, S.vm_root[vm])
        S.cnt[st.CNT_PT_FREE] += 1
        S.vm_root[vm] = -1
