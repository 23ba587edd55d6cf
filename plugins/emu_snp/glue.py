"""KVM's SEV-SNP glue and the host kernel's RMP helpers: the vendor points of
``emu.model.vendor_ops`` in terms of RMP instructions and SEV firmware commands.

The flows (``reference/snp.md`` §3-§4, rules R1-R8 of §7):

* **host** ([K-host]): every 4K RMPUPDATE first splits the host's large direct-map page over the
  frame, one way (``adjust_direct_map``, R7); a 2M one does not. ``rmpupdate`` retries while the
  firmware holds the 2M range (FAIL_OVERLAP); KVM's PSMASH retries while FAIL_INUSE. Firmware
  pages (the guest context) are 4K pages made Firmware by an RMPUPDATE and reclaimed with
  SNP_PAGE_RECLAIM then made shared; a failure of either leaks the page (``snp_leak_pages``).
* **launch** ([K-kvm], R8): at VM creation the guest context page, SNP_GCTX_CREATE,
  SNP_LAUNCH_START and SNP_ACTIVATE with the VM's ASID; each image page is made private 4K and
  Immutable (Pre-Guest) and launched with SNP_LAUNCH_UPDATE (``sev_gmem_post_populate``); when
  the guest first runs, the VMSAs are launched and SNP_LAUNCH_FINISH issued.
* **prepare** (§4.1): a folio guest_memfd hands out is made private in the RMP, 2M where the
  folio is 2M and all 512 entries are unassigned, else 4K (the THP RFC's walk over the folio,
  which skips assigned pages: those the build added).
* **mapping level** (§3): a private page is mapped no larger than its RMP entry.
* **RMP faults** (§3, R6): a PVALIDATE at 4K on a 2M entry, or an access through a mapping
  smaller than the 2M entry, makes KVM PSMASH the entry and zap the 512 gfns
  (``sev_handle_rmp_fault``); an entry already 4K is a spurious fault.
* **page-state changes** (§4.3, R7): the guest rescinds validation of pages going shared, sends
  its requests of at most ``psc_max_entries`` entries (2M where aligned, else 4K), KVM forwards
  each run of same-size entries to the VMM, which converts and discards (the core's conversion).
* **invalidate** (§4.2): a freed folio's entries go back to the hypervisor, 2M where the range
  covers a 2M entry, else PSMASH then 4K, each followed by a cache flush.
* **teardown** (§4.5): VMSAs made shared, SNP_DECOMMISSION, the guest context reclaimed.

No merge path exists (R4): a 2M entry comes back only when 512 pages that went back to the
hypervisor are prepared again as one 2M folio, unvalidated. Splits are counted by the core's
causes in ``V.split``, merges in ``V.merge`` (a reassignment in ``prepare_range``; UNSMASH, which
KVM never issues, in ``rmp.page_unsmash``).
"""
from emu.jit import kernel
from emu.model import clock, gmem, host, tdp_mmu
from emu.model import consts as C
from emu.model import state as st

from emu_snp import abi as A
from emu_snp import rmp as R
from emu_snp import state as T

CNT = st.N_CNT
P2M = 512
#: how often Linux retries an RMPUPDATE that found the 2M range held ([ISS143]: "max: 96");
#: KVM's PSMASH loop gets the same bound here
MAX_TRIES = 96


# --- host: the direct map and the RMP helpers ---------------------------------------------------------

@kernel
def _dm_split(V, S, ctx, vm, pfn, level, cause):
    """``set_memory_4k``'s split of one large direct-map page: a page-table page and a flush."""
    pt = host.alloc_4k(S, ctx, vm, C.OWN_HOST, T.SITE_DM_PT)
    if pt >= 0:
        V.stat[T.ST_DM_PT_PAGES] += 1
    clock.charge(S, ctx, S.cost[V.cost_base[T.XC_DM_SPLIT]])
    V.dm_split[cause, level] += 1
    what = T.SPLIT_DM_1G if level == 1 else T.SPLIT_DM_2M
    clock.emit(S, T.POINT_SPLIT, ctx, vm, -1, what, pfn, cause, 0, 0, 0)


@kernel(cold=True)
def adjust_direct_map(V, S, ctx, vm, pfn, cause):
    """Before a 4K RMPUPDATE: a host write through a large mapping holding any private 4K page
    raises an RMP #PF, so Linux splits the mapping to 4K first, a 1G one through 2M. No
    mechanism restores it ([K-host] ``adjust_direct_map``, R7)."""
    r = pfn >> 9
    if V.dm2m[r] != T.DM_LARGE:
        return
    if V.dm1g[r >> 9] == 0:
        _dm_split(V, S, ctx, vm, pfn, 1, cause)
        V.dm1g[r >> 9] = 1
    _dm_split(V, S, ctx, vm, pfn, 0, cause)
    V.dm2m[r] = T.DM_SPLIT


@kernel
def _hold(V, S, h):
    """With the ``busy`` option: the firmware or another CPU holds the 2M-aligned entry ``h``
    for one attempt (its lock bit). Returns 1 if it was set."""
    if V.opt[T.OPT_BUSY_PPM] > 0 and clock.chance_ppm(S, V.opt[T.OPT_BUSY_PPM]):
        V.rmp_flags[h] = V.rmp_flags[h] | A.F_LOCK
        return 1
    return 0


@kernel
def _release(V, h):
    V.rmp_flags[h] = V.rmp_flags[h] & (0xFF ^ A.F_LOCK)


@kernel(cold=True)
def rmp_update(V, S, ctx, vm, pfn, gfn, asid, assign, size, immutable, cause):
    """Linux's ``rmpupdate()``: split the direct map for a 4K update, then RMPUPDATE, retried
    while it returns FAIL_OVERLAP (the firmware's brief 2M lock, [K-host]). A failure is a
    firmware failure event; the caller sees the code."""
    if size == 0:
        adjust_direct_map(V, S, ctx, vm, pfn, cause)
    h = pfn & ~(P2M - 1)
    was = 0
    if R.assigned(V, pfn) and V.rmp_asid[h if size == 1 else pfn] != 0:
        was = 1
    # update_in_2m=smash: a 4K update inside a guest's 2M entry splits it first
    smashes = size == 0 and R.is_2m(V, pfn) and V.rmp_asid[h] != 0
    held = _hold(V, S, h)
    code = R.rmpupdate(V, S, ctx, vm, 0, pfn, gfn, asid, assign, size, immutable)
    tries = 1
    while code == A.FAIL_OVERLAP and tries < MAX_TRIES:
        if held:
            _release(V, h)
            held = 0
        S.cnt[CNT + T.CN_OVERLAP_RETRIES] += 1
        code = R.rmpupdate(V, S, ctx, vm, 0, pfn, gfn, asid, assign, size, immutable)
        tries += 1
    if held:
        _release(V, h)
    if code != A.SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_RMPUPDATE, code)
        return code
    if smashes:
        _entries(V, -1, P2M)
        was = 1
    now = 1 if assign == 1 and asid != 0 else 0
    if now:
        S.cnt[CNT + (T.CN_RMP_2M if size == 1 else T.CN_RMP_4K)] += 1
    if now != was:
        if size == 1:
            _entries(V, now - was, 0)
        else:
            _entries(V, 0, now - was)
    return code


@kernel(cold=True)
def psmash_retry(V, S, ctx, vm, pfn):
    """``snp_rmptable_psmash``: PSMASH the 2M entry holding ``pfn``, retried while FAIL_INUSE."""
    h = pfn & ~(P2M - 1)
    held = _hold(V, S, h)
    code = R.psmash(V, S, ctx, vm, 0, h)
    tries = 1
    while code == A.FAIL_INUSE and tries < MAX_TRIES:
        if held:
            _release(V, h)
            held = 0
        S.cnt[CNT + T.CN_INUSE_RETRIES] += 1
        code = R.psmash(V, S, ctx, vm, 0, h)
        tries += 1
    if held:
        _release(V, h)
    return code


@kernel
def count_split(V, S, ctx, vm, g, pfn, cause):
    """The 2M RMP entry backing global gfn ``g`` became 512 4K entries, for the core's ``cause``;
    the guest's 2M range remembers it, for the merge that may follow (R4)."""
    V.split[cause] += 1
    V.g_split[g >> 9] = 1
    _entries(V, -1, P2M)
    clock.emit(S, T.POINT_SPLIT, ctx, vm, -1, T.SPLIT_RMP, pfn & ~(P2M - 1), cause, 0, 0, 0)


@kernel
def _entries(V, d2m, d4k):
    """Keep the gauges of guest 2M and 4K entries."""
    V.stat[T.ST_2M_NOW] += d2m
    V.stat[T.ST_4K_NOW] += d4k
    if V.stat[T.ST_2M_NOW] > V.stat[T.ST_2M_PEAK]:
        V.stat[T.ST_2M_PEAK] = V.stat[T.ST_2M_NOW]
    if V.stat[T.ST_4K_NOW] > V.stat[T.ST_4K_PEAK]:
        V.stat[T.ST_4K_PEAK] = V.stat[T.ST_4K_NOW]


@kernel
def leak(V, S, ctx, vm, pfn):
    """``snp_leak_pages``: a page the firmware would not give back never returns to the host."""
    host.set_owner(S, pfn, 1, C.OWN_LEAKED)
    V.stat[T.ST_LEAKED] += 1
    S.cnt[CNT + T.CN_LEAKED] += 1


@kernel(cold=True)
def alloc_firmware_page(V, S, ctx, vm, site):
    """``snp_alloc_firmware_page``: a page made Firmware (assigned, Immutable, ASID 0) by a 4K
    RMPUPDATE (``rmp_mark_pages_firmware``)."""
    pfn = host.alloc_4k(S, ctx, vm, C.OWN_FW_CONTROL, site)
    if pfn < 0:
        return -1
    if rmp_update(V, S, ctx, vm, pfn, 0, 0, 1, 0, 1, T.DM_FIRMWARE) != A.SUCCESS:
        host.free_frames_one(S, ctx, vm, pfn)
        return -1
    return pfn


@kernel(cold=True)
def reclaim(V, S, ctx, vm, pfn):
    """``snp_page_reclaim``: SNP_PAGE_RECLAIM, then make the page shared; if either fails the
    page is leaked (§4.5). The ``reclaim_fail`` option injects firmware failures. Returns 0 when
    the page may be freed."""
    if V.opt[T.OPT_RECLAIM_FAIL_PPM] > 0 and clock.chance_ppm(S, V.opt[T.OPT_RECLAIM_FAIL_PPM]):
        code = R.reclaim_refused(V, S, ctx, pfn)
    else:
        code = R.page_reclaim(V, S, ctx, pfn, 0)
    if code == A.SEV_SUCCESS:
        code = rmp_update(V, S, ctx, vm, pfn, 0, 0, 0, 0, 0, T.DM_FIRMWARE)
    else:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_RECLAIM, code)
    if code != 0:
        leak(V, S, ctx, vm, pfn)
        return 1
    return 0


# --- prepare, invalidate, mapping level ----------------------------------------------------------------

@kernel
def _all_unassigned(V, pfn):
    """``is_large_rmp_possible``: every entry of the 2M range at ``pfn`` unassigned. KVM looks
    up all 512; emu reads the same answer from the 2M-aligned entry and its sub-page count
    (assigned entries 1..511, which --check verifies against the entries)."""
    return (V.rmp_flags[pfn] & A.F_ASSIGNED) == 0 and V.rmp_sub[pfn >> 9] == 0


@kernel(cold=True)
def prepare_range(V, S, ctx, vm, gfn, pfn, n):
    """``sev_gmem_prepare`` over a folio of ``n`` pages (the THP RFC's walk, §4.1): assigned
    entries are skipped; each gap gets 2M private entries where 2M aligned with 512 unassigned
    entries, else 4K ones; private, not Immutable, not validated (Guest-Invalid)."""
    asid = V.vm_asid[vm]
    n2 = 0
    n4 = 0
    i = 0
    while i < n:
        p = pfn + i
        if R.assigned(V, p):
            i += 1
            continue
        if (p & (P2M - 1)) == 0 and ((gfn + i) & (P2M - 1)) == 0 and n - i >= P2M \
                and _all_unassigned(V, p):
            code = rmp_update(V, S, ctx, vm, p, gfn + i, asid, 1, 1, 0, T.DM_PREPARE)
            g = S.vm_gfn_base[vm] + gfn + i
            if code == A.SUCCESS and V.g_split[g >> 9]:
                # the range's 2M entry was split; all 512 went back to the host and came back
                # as one fresh, unvalidated 2M entry: the only merge there is (R4)
                V.g_split[g >> 9] = 0
                V.merge[T.MERGE_REASSIGN] += 1
                clock.emit(S, T.POINT_MERGE, ctx, vm, -1, p, T.MERGE_REASSIGN, 0, 0, 0, 0)
            n2 += 1
            i += P2M
        else:
            code = rmp_update(V, S, ctx, vm, p, gfn + i, asid, 1, 0, 0, T.DM_PREPARE)
            n4 += 1
            i += 1
        if code != A.SUCCESS:
            return 1
    clock.emit(S, T.POINT_PREPARE, ctx, vm, -1, gfn, pfn, n, n2, n4, 0)
    return 0


@kernel(cold=True)
def _invalidate(V, S, ctx, vm, gfn, pfn, npages):
    """``sev_gmem_invalidate`` (§4.2): every assigned entry of the freed frames back to the
    hypervisor: one 2M update where a 2M-aligned 2M entry lies wholly in the range, else PSMASH
    (a failure only warns) and 4K updates; a cache flush of 4K or 2M after each."""
    psmashes = 0
    n2 = 0
    n4 = 0
    i = 0
    while i < npages:
        p = pfn + i
        if not R.assigned(V, p):
            i += 1
            continue
        big = R.is_2m(V, p)
        if big and (p & (P2M - 1)) == 0 and npages - i >= P2M:
            rmp_update(V, S, ctx, vm, p, 0, 0, 0, 1, 0, T.DM_INVALIDATE)
            clock.charge(S, ctx, S.cost[V.cost_base[T.XC_CLFLUSH_2M]])
            n2 += 1
            i += P2M
            continue
        if big:
            if psmash_retry(V, S, ctx, vm, p) == A.SUCCESS:
                count_split(V, S, ctx, vm, S.vm_gfn_base[vm] + gfn + i, p, C.CAUSE_PUNCH)
                psmashes += 1
            else:
                clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_PSMASH, A.FAIL_EXPAND)
        rmp_update(V, S, ctx, vm, p, 0, 0, 0, 0, 0, T.DM_INVALIDATE)
        clock.charge(S, ctx, S.cost[V.cost_base[T.XC_CLFLUSH_4K]])
        n4 += 1
        i += 1
    clock.emit(S, T.POINT_INVALIDATE, ctx, vm, -1, gfn, pfn, npages, psmashes, n2, n4)


@kernel(cold=True)
def _fill_gaps(V, S, ctx, vm):
    """Prepare the private pages the build's folios hold but the build did not add: the THP
    RFC prepares a folio's gaps on its first fault; emu does it when the launch finishes,
    before any fault, with the same result."""
    base = S.vm_gfn_base[vm]
    end = base + S.vm_pages[vm]
    g = base
    while g < end:
        pfn = S.g_pfn[g]
        if pfn < 0 or S.frame_owner[pfn] != C.OWN_GUEST_PRIVATE or R.assigned(V, pfn):
            g += 1
            continue
        if gmem.folio_level(S, g) != C.LVL_4K:
            h = g & ~(P2M - 1)
            before = S.cnt[CNT + T.CN_RMP_4K]
            prepare_range(V, S, ctx, vm, h - base, S.g_pfn[h], P2M)
            S.cnt[CNT + T.CN_LAUNCH_GAP] += S.cnt[CNT + T.CN_RMP_4K] - before
            g = h + P2M
        else:
            prepare_range(V, S, ctx, vm, g - base, pfn, 1)
            S.cnt[CNT + T.CN_LAUNCH_GAP] += 1
            g += 1


# --- RMP faults --------------------------------------------------------------------------------------

@kernel(cold=True)
def rmp_fault(V, S, ctx, vm, g, trigger, cause):
    """An RMP #NPF on global gfn ``g`` (``sev_handle_rmp_fault``, §3): KVM's ordinary fault
    handler runs first (it finds the mapping present); an unassigned entry is only warned
    about; a 4K entry is a spurious fault (a PSMASH raced it); else PSMASH (a failure with the
    entry now 4K is that race), then zap the 512 gfns so the next fault maps at 4K."""
    base = S.vm_gfn_base[vm]
    S.cnt[st.CNT_EXITS] += 1
    clock.charge(S, ctx, S.cost[st.COST_EXIT] + S.cost[st.COST_FAULT])
    S.cnt[CNT + T.CN_RMP_FAULTS] += 1
    pfn = S.g_pfn[g]
    code = 0
    level = C.LVL_4K
    if pfn < 0 or not R.assigned(V, pfn):
        code = -1
    elif not R.is_2m(V, pfn):
        S.cnt[CNT + T.CN_RMP_SPURIOUS] += 1
    else:
        level = C.LVL_2M
        code = psmash_retry(V, S, ctx, vm, pfn)
        if code == A.SUCCESS:
            count_split(V, S, ctx, vm, g, pfn, cause)
        elif R.assigned(V, pfn) and not R.is_2m(V, pfn):
            S.cnt[CNT + T.CN_PSMASH_RACED] += 1
        else:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_PSMASH, code)
        clock.lock(S, ctx, C.LOCK_MMU, vm, True)
        tdp_mmu.zap_range(S, V, ctx, vm, -1, g & ~(P2M - 1), P2M, C.CAUSE_FAULT, False)
        clock.unlock(S, ctx, C.LOCK_MMU, vm, True)
    clock.emit(S, T.POINT_RMP_FAULT, ctx, vm, -1, g - base, pfn, level, code, trigger, 0)


@kernel(cold=True)
def _npt_smaller(V, S, ctx, vm, gfn, pfn):
    """A 4K mapping is being installed over a 2M RMP entry (trigger (b) of §3: the folio was
    split under it, or the guest's 4K PVALIDATE made KVM fault at 4K). The guest's access
    through it will RMP-fault: KVM PSMASHes and zaps the 512 gfns, and the guest faults the page
    in again. Emu does it here, under the fault's ``mmu_lock`` (read): the PSMASH, the exit,
    KVM's spurious fault, the zap's TLB flush and the second fault are charged; the leaf being
    installed is the only one the zap would remove (a 4K leaf never sits under a 2M entry in
    emu), so it stays."""
    g = S.vm_gfn_base[vm] + gfn
    cause = C.CAUSE_FOLIO_SPLIT if gmem.folio_level(S, g) == C.LVL_4K else C.CAUSE_GUEST_ACCEPT
    S.cnt[st.CNT_EXITS] += 2
    clock.charge(S, ctx, 2 * (S.cost[st.COST_EXIT] + S.cost[st.COST_FAULT]))
    S.cnt[CNT + T.CN_RMP_FAULTS] += 1
    code = psmash_retry(V, S, ctx, vm, pfn)
    if code == A.SUCCESS:
        count_split(V, S, ctx, vm, g, pfn, cause)
    else:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_PSMASH, code)
    tdp_mmu.flush_tlbs(S, ctx, vm)
    clock.emit(S, T.POINT_RMP_FAULT, ctx, vm, -1, gfn, pfn, C.LVL_2M, code, T.TRIG_NPT, 0)
    return 0


# --- the guest: launch finish, validation, page-state changes ------------------------------------------

@kernel(cold=True)
def launch_finish(V, S, ctx, vm):
    """KVM_SEV_SNP_LAUNCH_FINISH, which the VMM issues after the build, before the guest first
    runs (emu: when it first does something): each vCPU's VMSA made private and Immutable at
    INITIAL_VMSA_GPA and launched (page type VMSA), SNP_LAUNCH_FINISH, then the gaps of the
    build's folios prepared (``_fill_gaps``). The work runs in the VMM's context; the vCPUs
    start when it is done."""
    vmm = S.sc[st.SC_NVCPU] + 2 * vm
    clock.sync_clock(S, vmm, S.ctx_clock[ctx])
    asid = V.vm_asid[vm]
    gctx = V.vm_gctx[vm]
    vb = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        p = V.vcpu_vmsa[vb + i]
        if p < 0 or S.vcpu_alive[vb + i] == 0:
            continue
        code = rmp_update(V, S, vmm, vm, p, A.VMSA_GFN, asid, 1, 0, 1, T.DM_LAUNCH)
        if code == A.SUCCESS:
            code = R.launch_update(V, S, vmm, gctx, p, A.VMSA_GFN, 0, A.PAGE_VMSA)
            if code != A.SEV_SUCCESS:
                clock.error(S, vmm, vm, C.ERR_FW_FAILURE, A.FW_LAUNCH_UPDATE, code)
    code = R.launch_finish(V, S, vmm, gctx)
    if code != A.SEV_SUCCESS:
        clock.error(S, vmm, vm, C.ERR_FW_FAILURE, A.FW_LAUNCH_FINISH, code)
    V.vm_state[vm] = T.VM_RUNNING
    _fill_gaps(V, S, vmm, vm)
    for i in range(S.vm_vcpus[vm]):
        clock.sync_clock(S, vb + i, S.ctx_clock[vmm])


@kernel
def _refault(S, ctx):
    """A guest instruction on a page KVM has not mapped: an #NPF and an ordinary fault."""
    S.cnt[st.CNT_EXITS] += 1
    clock.charge(S, ctx, S.cost[st.COST_EXIT] + S.cost[st.COST_FAULT])


@kernel(cold=True)
def _rescind_page(V, S, ctx, vm, g, size):
    """PVALIDATE(validate=0) of the page at global gfn ``g``, as ``pvalidate_pages`` issues it:
    retried after the RMP fault a 4K rescind on a 2M entry takes (KVM PSMASHes: §4.3,
    **[inferred]**). A page the guest never validated is only counted (a Linux guest would
    have terminated on the CF=1 it gets). Returns the instruction's last code."""
    gfn = g - S.vm_gfn_base[vm]
    pfn = S.g_pfn[g]
    if (S.g_attr[g] & st.GA_PRIVATE) == 0:
        return A.SUCCESS
    if pfn < 0 or not R.assigned(V, pfn):
        S.cnt[CNT + T.CN_PSC_UNVALIDATED] += 1
        return A.SUCCESS
    code = A.SUCCESS
    for _ in range(3):
        if S.g_map[g] == 0:
            _refault(S, ctx)            # KVM maps it; the conversion's zap removes it again
        code = R.pvalidate(V, S, ctx, vm, V.vm_asid[vm], gfn, pfn, size, 0)
        if code != A.NPF_RMP_SIZEM:
            break
        rmp_fault(V, S, ctx, vm, g, T.TRIG_PVALIDATE, C.CAUSE_CONVERT)
    if code == A.SUCCESS:
        S.cnt[CNT + T.CN_RESCINDS] += 1
    elif code == A.FAIL_NOUPDATE:
        S.cnt[CNT + T.CN_PSC_UNVALIDATED] += 1 if size == 0 else P2M
    return code


@kernel
def _rescind(V, S, ctx, vm, g, size):
    """The rescind of one PSC entry; a 2M one over 4K entries (FAIL_SIZEMISMATCH) or over an
    unbacked first page is redone as 512 4K rescinds ([GUEST] ``pval_pages``)."""
    if size == 1:
        pfn = S.g_pfn[g]
        if pfn >= 0 and R.assigned(V, pfn) and (S.g_attr[g] & st.GA_PRIVATE) != 0:
            if _rescind_page(V, S, ctx, vm, g, 1) != A.FAIL_SIZEMISMATCH:
                return
        for j in range(P2M):
            _rescind_page(V, S, ctx, vm, g + j, 0)
    else:
        _rescind_page(V, S, ctx, vm, g, 0)


@kernel(cold=True)
def _page_state_change(V, S, ctx, vm, vcpu, gfn, count, to_shared):
    """The guest's page-state change of ``count`` pages from ``gfn`` (§4.3): entries of 2M where
    the address is 2M aligned with 2M left, else 4K ([GUEST] ``__set_pages_state``); going
    shared, validation is rescinded first (``rescind``); one VMGEXIT per ``psc_max_entries``
    entries; KVM forwards each run of adjacent entries of one size within a request to the VMM
    (``KVM_HC_MAP_GPA_RANGE``). The VMM's conversion follows in the core."""
    if V.vm_state[vm] == T.VM_LAUNCHING:
        launch_finish(V, S, ctx, vm)
    base = S.vm_gfn_base[vm]
    maxe = V.opt[T.OPT_PSC_MAX]
    rescind = to_shared and V.opt[T.OPT_RESCIND] != 0
    entries = 0
    runs = 0
    in_request = 0
    prev = -1
    i = 0
    while i < count:
        gf = gfn + i
        size = 1 if (gf & (P2M - 1)) == 0 and count - i >= P2M else 0
        if in_request == maxe:
            in_request = 0
            prev = -1
        if size != prev:
            runs += 1
        prev = size
        in_request += 1
        entries += 1
        if rescind:
            _rescind(V, S, ctx, vm, base + gf, size)
        i += P2M if size == 1 else 1
    requests = (entries + maxe - 1) // maxe
    S.cnt[st.CNT_EXITS] += requests
    S.cnt[CNT + T.CN_PSC_REQUESTS] += requests
    S.cnt[CNT + T.CN_PSC_ENTRIES] += entries
    S.cnt[CNT + T.CN_PSC_USER_EXITS] += runs
    clock.charge(S, ctx, requests * (S.cost[st.COST_EXIT] + S.cost[V.cost_base[T.XC_PSC_REQUEST]])
                 + runs * S.cost[V.cost_base[T.XC_PSC_USER_EXIT]])
    clock.emit(S, T.POINT_PSC, ctx, vm, vcpu, gfn, count, entries, requests, 1 if to_shared else 0,
               runs)


@kernel
def _guest_accept(V, S, ctx, vm, vcpu, gfn, level):
    """PVALIDATE(validate=1) at ``level`` and KVM's answer (R5): not mapped yet, the host
    faults it in; a 2M request on 4K entries, the guest retries at 4K; a 4K one on a 2M entry,
    KVM PSMASHes and zaps, and the guest retries (meeting an unmapped page)."""
    if V.vm_state[vm] == T.VM_LAUNCHING:
        launch_finish(V, S, ctx, vm)
    g = S.vm_gfn_base[vm] + gfn
    if S.g_map[g] == 0:
        return C.ACCEPT_NOT_MAPPED
    code = R.pvalidate(V, S, ctx, vm, V.vm_asid[vm], gfn, S.g_pfn[g], level, 1)
    if code == A.SUCCESS:
        return C.ACCEPT_OK
    if code == A.FAIL_NOUPDATE:
        return C.ACCEPT_ALREADY
    if code == A.FAIL_SIZEMISMATCH:
        return C.ACCEPT_SIZE_MISMATCH
    if code == A.NPF_RMP_SIZEM:
        rmp_fault(V, S, ctx, vm, g, T.TRIG_PVALIDATE, C.CAUSE_GUEST_ACCEPT)
        return C.ACCEPT_NOT_MAPPED
    # an RMP #NPF on an entry the guest does not own reaches the VMM as a memory fault
    return 100 + (code if code < 256 else 0)


# --- lifecycle --------------------------------------------------------------------------------------

@kernel(cold=True)
def _host_init(V, S, ctx):
    """The RMP in host memory (``16 B x frames + 16 KiB``, §1), reserved at boot as static
    metadata in whole 2M regions (Linux reserves the whole 2M around each unaligned end of the
    RMP in e820, [K-host] ``__snp_fixup_e820_tables``), outside the direct map; SNP init puts
    the table's own entries in the Firmware state ([FW])."""
    n = V.stat[T.ST_RMP_PAGES]
    marked = 0
    for _ in range((n + P2M - 1) // P2M):
        b = host.alloc_2m(S, ctx, -1, C.OWN_STATIC_META, T.SITE_RMP)
        if b < 0:
            clock.error(S, ctx, -1, C.ERR_HOST_OOM, T.SITE_RMP, 9)
            break
        V.dm2m[b >> 9] = T.DM_NOT_MAPPED
        m = min(P2M, n - marked)
        for i in range(m):
            V.rmp_flags[b + i] = A.F_ASSIGNED | A.F_IMMUTABLE
        V.rmp_sub[b >> 9] = m - 1
        marked += m
        V.stat[T.ST_RMP_RESERVED] += P2M


@kernel(cold=True)
def _vm_init(V, S, ctx, vm):
    """``snp_launch_start``: the guest context (a firmware page, SNP_GCTX_CREATE), then
    SNP_LAUNCH_START and SNP_ACTIVATE with the VM's ASID (slot + 1) ([K-kvm])."""
    gctx = alloc_firmware_page(V, S, ctx, vm, T.SITE_FW_PAGE)
    if gctx < 0:
        return -1
    asid = vm + 1
    code = R.gctx_create(V, S, ctx, vm, gctx)
    call = A.FW_GCTX_CREATE
    if code == A.SEV_SUCCESS:
        code = R.launch_start(V, S, ctx, gctx)
        call = A.FW_LAUNCH_START
    if code == A.SEV_SUCCESS:
        code = R.activate(V, S, ctx, gctx, asid)
        call = A.FW_ACTIVATE
    if code != A.SEV_SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, call, code)
        return -1
    V.vm_asid[vm] = asid
    V.vm_state[vm] = T.VM_LAUNCHING
    return 0


@kernel(cold=True)
def _vcpu_init(V, S, ctx, vm, vcpu):
    """The VMSA page from ``snp_safe_alloc_page``, which never keeps a 2M-aligned page (the
    erratum of §2: a spurious RMP fault where a huge page meets a 2M-aligned VMSA)."""
    pfn = host.alloc_4k(S, ctx, vm, C.OWN_FW_CONTROL, T.SITE_VMSA)
    if pfn < 0:
        return -1
    if (pfn & (P2M - 1)) == 0:
        other = host.alloc_4k(S, ctx, vm, C.OWN_FW_CONTROL, T.SITE_VMSA)
        host.free_frames_one(S, ctx, vm, pfn)
        S.cnt[CNT + T.CN_VMSA_REALIGNED] += 1
        if other < 0:
            return -1
        pfn = other
    V.vcpu_vmsa[S.vm_vcpu_base[vm] + vcpu] = pfn
    return 0


@kernel(cold=True)
def _build_add(V, S, ctx, vm, gfn, pfn):
    """``sev_gmem_post_populate`` for one image page (R8): the entry must be unassigned; made
    private 4K and Immutable (Pre-Guest), then SNP_LAUNCH_UPDATE; on a failure reclaimed and
    made shared, or leaked."""
    if V.vm_state[vm] != T.VM_LAUNCHING or R.assigned(V, pfn):
        clock.error(S, ctx, vm, C.ERR_VENDOR, A.FW_LAUNCH_UPDATE, gfn)
        return 1
    code = rmp_update(V, S, ctx, vm, pfn, gfn, V.vm_asid[vm], 1, 0, 1, T.DM_LAUNCH)
    if code != A.SUCCESS:
        return 1
    code = R.launch_update(V, S, ctx, V.vm_gctx[vm], pfn, gfn, 0, A.PAGE_NORMAL)
    if code != A.SEV_SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_LAUNCH_UPDATE, code)
        if R.page_reclaim(V, S, ctx, pfn, 0) != A.SEV_SUCCESS \
                or rmp_update(V, S, ctx, vm, pfn, 0, 0, 0, 0, 0, T.DM_LAUNCH) != A.SUCCESS:
            S.cnt[CNT + T.CN_LEAKED] += 1
        return 1
    return 0


@kernel(cold=True)
def _vcpu_destroy(V, S, ctx, vm, vcpu):
    """``sev_free_vcpu``: a launched VMSA (Guest-Valid) is made shared before it is freed; a
    failure leaks it."""
    gv = S.vm_vcpu_base[vm] + vcpu
    p = V.vcpu_vmsa[gv]
    V.vcpu_vmsa[gv] = -1
    if p < 0:
        return
    if R.assigned(V, p) and rmp_update(V, S, ctx, vm, p, 0, 0, 0, 0, 0, T.DM_FIRMWARE) != 0:
        leak(V, S, ctx, vm, p)
        return
    host.free_frames_one(S, ctx, vm, p)


@kernel(cold=True)
def _vm_destroy(V, S, ctx, vm):
    """``sev_vm_destroy``: SNP_DECOMMISSION, then the guest context page reclaimed and freed
    (``snp_free_firmware_page``), or leaked."""
    gctx = V.vm_gctx[vm]
    if gctx >= 0:
        code = R.decommission(V, S, ctx, gctx)
        if code != A.SEV_SUCCESS:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_DECOMMISSION, code)
        if reclaim(V, S, ctx, vm, gctx) == 0:
            host.free_frames_one(S, ctx, vm, gctx)
    V.vm_gctx[vm] = -1
    V.vm_state[vm] = T.VM_NONE
    V.vm_asid[vm] = 0
    base = S.vm_gfn_base[vm]
    for r in range(base >> 9, (base + S.vm_pages[vm] + P2M - 1) >> 9):
        V.g_split[r] = 0


# --- --check --------------------------------------------------------------------------------------

@kernel(cold=True)
def _check(V, S):
    """The vendor's invariants, checked over the whole state:

    * no private mapping larger than its RMP entry: a 2M private leaf maps a 2M-aligned assigned
      2M entry; no private 1G leaf; a 4K private leaf of a running guest maps an assigned entry;
    * every validated entry is assigned;
    * RMP state against frame owners: frames of the host, the pools, shared guest memory and
      free frames are Hypervisor pages; private guest frames belong to a live guest's ASID;
      the RMP's own frames are Firmware pages;
    * the 2M layout: the tails of a 2M entry assigned with ASID 0, not 2M; sub-page counts;
    * a direct-map 2M page never covers a mix of assigned and unassigned entries (R7).
    """
    bad = 0
    nf = S.frame_owner.shape[0]
    for g in range(S.g_map.shape[0]):
        m = S.g_map[g]
        if m == 0 or (S.g_attr[g] & st.GA_PRIVATE) == 0:
            continue
        pfn = S.g_pfn[g]
        if m == C.LVL_1G + 1:
            bad += 1
        elif m == C.LVL_2M + 1:
            if (g & (P2M - 1)) == 0 and ((pfn & (P2M - 1)) != 0 or not R.is_2m(V, pfn)):
                bad += 1
        elif pfn >= 0 and not R.assigned(V, pfn):
            for vm in range(S.vm_gfn_base.shape[0]):
                base = S.vm_gfn_base[vm]
                if g >= base and g < base + S.vm_pages[vm] and V.vm_state[vm] == T.VM_RUNNING:
                    bad += 1
    for pfn in range(nf):
        f = V.rmp_flags[pfn]
        o = S.frame_owner[pfn]
        a = (f & A.F_ASSIGNED) != 0
        if (f & A.F_VALIDATED) and not a:
            bad += 1
        if o == C.OWN_LEAKED:
            continue
        if o == C.OWN_STATIC_META:
            # the table (Firmware) or the e820 padding around it (Hypervisor)
            if (f & (0xFF ^ A.F_LOCK)) != (A.F_ASSIGNED | A.F_IMMUTABLE) and f != 0:
                bad += 1
        elif o == C.OWN_GUEST_PRIVATE:
            if a:
                asid = V.rmp_asid[pfn & ~(P2M - 1)] if R.is_2m(V, pfn) else V.rmp_asid[pfn]
                live = False
                for vm in range(V.vm_asid.shape[0]):
                    if V.vm_state[vm] != T.VM_NONE and V.vm_asid[vm] == asid:
                        live = True
                if not live:
                    bad += 1
        elif o != C.OWN_FW_CONTROL:
            if a or (f & A.F_IMMUTABLE):
                bad += 1
    for r in range(V.rmp_sub.shape[0]):
        b = r * P2M
        if b + P2M > nf:
            break
        n = 0
        for i in range(1, P2M):
            if V.rmp_flags[b + i] & A.F_ASSIGNED:
                n += 1
        head = V.rmp_flags[b]
        if (head & (A.F_ASSIGNED | A.F_2M)) == (A.F_ASSIGNED | A.F_2M):
            if n != P2M - 1:
                bad += 1
            for i in range(1, P2M):
                if V.rmp_asid[b + i] != 0 or (V.rmp_flags[b + i] & A.F_2M):
                    bad += 1
                    break
        elif n != V.rmp_sub[r]:
            bad += 1
        if V.dm2m[r] == T.DM_LARGE:
            total = n + (1 if head & A.F_ASSIGNED else 0)
            if total != 0 and total != P2M:
                bad += 1
    return bad


# --- the points -----------------------------------------------------------------------------------
# Thin entries: a point is compiled into every caller, the cold bodies above are real calls; the
# tests that decide nothing is to be done are made here, so the common case costs no call.

def host_init(V, S, ctx):
    return _host_init(V, S, ctx)


def vm_init(V, S, ctx, vm):
    return _vm_init(V, S, ctx, vm)


def vcpu_init(V, S, ctx, vm, vcpu):
    return _vcpu_init(V, S, ctx, vm, vcpu)


def vcpu_exit(V, S, ctx, vm, vcpu):
    if V.vm_state[vm] == T.VM_LAUNCHING:
        launch_finish(V, S, ctx, vm)


def build_add(V, S, ctx, vm, gfn, pfn):
    return _build_add(V, S, ctx, vm, gfn, pfn)


def gmem_prepare(V, S, ctx, vm, gfn, pfn, order):
    # during the build, guest_memfd is populated page by page (build_add), not prepared
    if V.vm_state[vm] != T.VM_RUNNING:
        return 0
    return prepare_range(V, S, ctx, vm, gfn, pfn, 1 << order)


def gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages):
    _invalidate(V, S, ctx, vm, gfn, pfn, npages)


def gmem_max_mapping_level(V, S, vm, gfn, pfn):
    """``sev_gmem_max_mapping_level``: the RMP entry's level, 4K when unassigned (§3)."""
    if R.is_2m(V, pfn):
        return C.LVL_2M
    return C.LVL_4K


def set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn):
    if level == C.LVL_4K and R.is_2m(V, pfn):
        return _npt_smaller(V, S, ctx, vm, gfn, pfn)
    return 0


def page_state_change(V, S, ctx, vm, vcpu, gfn, count, to_shared):
    _page_state_change(V, S, ctx, vm, vcpu, gfn, count, to_shared)


def guest_accept(V, S, ctx, vm, vcpu, gfn, level):
    return _guest_accept(V, S, ctx, vm, vcpu, gfn, level)


def vcpu_destroy(V, S, ctx, vm, vcpu):
    return _vcpu_destroy(V, S, ctx, vm, vcpu)


def vm_destroy(V, S, ctx, vm):
    return _vm_destroy(V, S, ctx, vm)


def check(V, S):
    return _check(V, S)
