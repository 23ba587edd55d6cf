"""The TDX module: every SEAMCALL emu models, as a jitted kernel checking the module's rules.

Each call takes its operands as the ABI names them (HPAs as 4K frame numbers, GPAs as TD-local
4K frame numbers, levels 0/1/2 = 4K/2M/1G), changes the PAMT and Secure-EPT state the way the
module does, charges its cost to the calling context, counts it (``S.fw_*``, failures per status
in ``V.fail_status``), emits the ``tdx:seamcall`` probe event, and returns the status code with
the ABI's bits (``emu_tdx.abi``). Output registers go to ``V.out`` (RCX, RDX, R8, R9, R10, R11,
R12, R13). The KVM glue (``emu_tdx.glue``) and the scripting API (``emu_tdx.script``) both call
these kernels, so a call sequence tested through the API is the sequence the emulator runs.

The rules and where they come from (``reference/tdx.md``):

* the S-EPT states each leaf accepts: §2.3; the TLB-tracking model (BLOCK records the epoch,
  TRACK advances it, vCPUs are counted per epoch at TD entry and exit): §2.4;
* per-call effects (PAMT page types and owners, Dynamic PAMT page counts and the removal hint,
  the TD's child count, DEMOTE and PROMOTE): §2.5; Dynamic PAMT structure and which calls need a
  page pair: §1.2;
* the guest's TDG.MEM.PAGE.ACCEPT outcomes: §2.5, last item.

Where the reference is silent the choice is written next to the code (e.g. which status a call
made in the wrong TD lifecycle state returns: ``TDX_OP_STATE_INCORRECT``).

The HPA a Secure-EPT leaf maps is read from the per-gfn frame table the KVM model keeps
(``S.g_pfn``): PAGE.ADD and PAGE.AUG write it, so the two can never disagree, and the module
needs no second copy of the largest array in the emulator.
"""
from emu.jit import kernel
from emu.model import clock

from emu_tdx import abi as A
from emu_tdx import state as T

P2M = 512


# --- PAMT entries ---------------------------------------------------------------------------------

@kernel
def pt_of(V, pfn):
    return V.pamt4k[pfn] & T.PT_MASK


@kernel
def owner_of(V, pfn):
    """The TD slot owning frame ``pfn`` per its PAMT_4K entry, or -1."""
    return (V.pamt4k[pfn] >> T.OWNER_SHIFT) - 1


@kernel
def _set4k(V, pfn, pt, td):
    V.pamt4k[pfn] = (V.pamt4k[pfn] & T.BITMAP_BIT) | pt | ((td + 1) << T.OWNER_SHIFT)


@kernel
def dpamt(V):
    return V.opt[T.OPT_DPAMT] != 0


@kernel
def _in_host(V, pfn):
    return pfn >= 0 and pfn < V.pamt4k.shape[0]


@kernel
def hpa_free_4k(V, pfn):
    """The explicit-HPA check of a page about to be handed to a TD (§1.2, helpers.c).

    Under Dynamic PAMT the walk must find a page pair at the 2M level (else
    ``MISSING_PAMT_PAGE_PAIR``) and the page must not be a Dynamic PAMT page itself.
    """
    if not _in_host(V, pfn):
        return A.OPERAND_ADDR_RANGE_ERROR
    r = pfn >> 9
    pt2 = V.pamt2m_pt[r]
    if dpamt(V):
        if pt2 == A.PT_NDA:
            return A.MISSING_PAMT_PAGE_PAIR
        if pt2 != A.PT_PAMT:
            return A.PAGE_METADATA_INCORRECT
        if V.pamt4k[pfn] & T.BITMAP_BIT:
            return A.PAGE_METADATA_INCORRECT
    elif pt2 != A.PT_NDA:
        return A.PAGE_METADATA_INCORRECT
    if pt_of(V, pfn) != A.PT_NDA:
        return A.PAGE_METADATA_INCORRECT
    return A.SUCCESS


@kernel
def _assign4k(V, pfn, pt, td):
    """Give a checked-free 4K page to ``td`` as type ``pt`` (Dynamic PAMT: count it, §1.2)."""
    _set4k(V, pfn, pt, td)
    if dpamt(V):
        V.pamt2m_count[pfn >> 9] += 1


@kernel
def _release4k(V, pfn):
    """Return a TD's 4K page to ``PT_NDA``; 1 when its region's page count reached 0 (the hint)."""
    V.pamt4k[pfn] = V.pamt4k[pfn] & T.BITMAP_BIT
    if dpamt(V):
        r = pfn >> 9
        V.pamt2m_count[r] -= 1
        if V.pamt2m_count[r] == 0:
            return 1
    return 0


VP_HASH_EMPTY = -1
VP_HASH_DELETED = -2


# --- calls: accounting ------------------------------------------------------------------------------

@kernel(cold=True)
def status_index(V, status):
    for i in range(V.status_values.shape[0]):
        if V.status_values[i] == status:
            return i
    return 0


@kernel
def fw(V, S, ctx, vm, call, status, a0, a1, a2):
    """Charge, count and trace one call; returns ``status`` unchanged."""
    ns = S.cost[V.cost_base[call]]
    clock.charge(S, ctx, ns)
    S.fw_count[call] += 1
    S.fw_ns[call] += ns
    if status < 0:
        S.fw_fail[call] += 1
        V.fail_status[call, status_index(V, status)] += 1
    clock.emit(S, T.POINT_SEAMCALL, ctx, vm, -1, call, a0, a1, a2, status, ns)
    return status


@kernel
def td_of(V, tdr):
    """The TD slot whose TDR is frame ``tdr``, or -1 if it is not a TDR page."""
    if not _in_host(V, tdr) or pt_of(V, tdr) != A.PT_TDR:
        return -1
    return owner_of(V, tdr)


@kernel
def _vp_home(V, tdvpr):
    """The first slot of ``tdvpr`` in the open-addressing table ``V.vp_hash`` (Fibonacci
    hashing; the table is a power of two at least twice the vCPU count)."""
    return ((int(tdvpr) * 0x61C8864680B583EB) >> 20) & (V.vp_hash.shape[0] - 1)


@kernel
def vp_of(V, tdvpr):
    """The vCPU whose TDVPR is frame ``tdvpr``, or -1. The module finds a vCPU from its TDVPR
    address; a hashed table keeps that O(1) on every TDH.VP.ENTER."""
    if not _in_host(V, tdvpr) or pt_of(V, tdvpr) != A.PT_TDVPR:
        return -1
    mask = V.vp_hash.shape[0] - 1
    i = _vp_home(V, tdvpr)
    for _ in range(V.vp_hash.shape[0]):
        v = V.vp_hash[i]
        if v == VP_HASH_EMPTY:
            return -1
        if v >= 0 and V.vp_tdvpr[v] == tdvpr:
            return v
        i = (i + 1) & mask
    return -1


@kernel(cold=True)
def _vp_remember(V, vp, tdvpr):
    """Enter vCPU ``vp`` (TDVPR ``tdvpr``) in the lookup table, reusing a deleted slot."""
    mask = V.vp_hash.shape[0] - 1
    i = _vp_home(V, tdvpr)
    while V.vp_hash[i] >= 0:
        i = (i + 1) & mask
    V.vp_hash[i] = vp


@kernel(cold=True)
def _vp_forget(V, tdvpr):
    """The TDVPR was reclaimed: its vCPU leaves the lookup table (a deleted mark keeps the
    probe chains of the others intact) and its slot is free for a new TDH.VP.CREATE."""
    mask = V.vp_hash.shape[0] - 1
    i = _vp_home(V, tdvpr)
    for _ in range(V.vp_hash.shape[0]):
        v = V.vp_hash[i]
        if v == VP_HASH_EMPTY:
            return
        if v >= 0 and V.vp_tdvpr[v] == tdvpr:
            V.vp_hash[i] = VP_HASH_DELETED
            V.vp_tdvpr[v] = -1
            V.vp_ntdcx[v] = 0
            V.vp_state[v] = T.VP_NONE
            V.vp_epoch[v] = -1
            return
        i = (i + 1) & mask
    for v in range(V.vp_tdvpr.shape[0]):
        if V.vp_tdvpr[v] == tdvpr:
            return v
    return -1


@kernel
def tracked(V, td, bepoch):
    """``is_tlb_tracked`` (§2.4); always true before the TD may run."""
    if V.td_state[td] != T.TD_RUNNABLE:
        return True
    e = V.td_epoch[td]
    if bepoch < e - 1:
        return True
    return bepoch == e - 1 and V.td_ref[td, (e - 1) & 1] == 0


@kernel
def _tracking_required(V, td):
    return V.td_state[td] == T.TD_RUNNABLE


# --- Secure EPT walk -----------------------------------------------------------------------------

@kernel
def pdpt_of(V, S, td, g):
    """The S-EPT page holding the 1G entries over global gfn ``g`` of TD ``td`` (-1: none).

    Kept per TD and TD-local 512G range: TD slots are only 1G apart in the global gfn space."""
    return V.spt1g[td, (g - S.vm_gfn_base[td]) >> 27]


@kernel
def entry(V, S, td, g, level):
    """State of the S-EPT entry at ``level`` covering global gfn ``g``; -1 when the walk stops
    above it (a missing table or a leaf on the way down: ``TDX_EPT_WALK_FAILED``)."""
    if level == 3:
        return A.SEPT_NL_MAPPED if pdpt_of(V, S, td, g) >= 0 else A.SEPT_FREE
    if pdpt_of(V, S, td, g) < 0:
        return -1
    if level == 2:
        return V.sept1g[g >> 18]
    if V.sept1g[g >> 18] != A.SEPT_NL_MAPPED:
        return -1
    if level == 1:
        return V.sept2m[g >> 9]
    if V.sept2m[g >> 9] != A.SEPT_NL_MAPPED:
        return -1
    return V.sept4k[g]


@kernel
def set_entry(V, S, td, g, level, state):
    if level == 0:
        V.sept4k[g] = state
    elif level == 1:
        V.sept2m[g >> 9] = state
    else:
        V.sept1g[g >> 18] = state


@kernel
def _is_leaf_state(s):
    return (s == A.SEPT_MAPPED or s == A.SEPT_BLOCKED or s == A.SEPT_BLOCKEDW
            or s == A.SEPT_PENDING or s == A.SEPT_PENDING_BLOCKED or s == A.SEPT_PENDING_BLOCKEDW)


@kernel
def _unblocked(s):
    if s == A.SEPT_BLOCKED or s == A.SEPT_BLOCKEDW:
        return A.SEPT_MAPPED
    if s == A.SEPT_PENDING_BLOCKED or s == A.SEPT_PENDING_BLOCKEDW:
        return A.SEPT_PENDING
    if s == A.SEPT_NL_BLOCKED:
        return A.SEPT_NL_MAPPED
    return s


@kernel
def _bepoch(V, S, g, level, s):
    """The epoch recorded when the entry at (``g``, ``level``) was blocked (see state.py)."""
    if s == A.SEPT_NL_BLOCKED:
        pt = V.spt4k[g >> 9] if level == 1 else V.spt2m[g >> 18]
        return V.pamt4k_bepoch[pt >> 9]
    pfn = S.g_pfn[g]
    if level == 1:
        return V.pamt2m_bepoch[pfn >> 9]
    return V.pamt4k_bepoch[pfn >> 9]


# --- TD and vCPU lifecycle ------------------------------------------------------------------------

@kernel(cold=True)
def tdh_mng_create(V, S, ctx, td, tdr, hkid):
    """TDH.MNG.CREATE: ``tdr`` becomes the TDR of a new TD in emu's slot ``td``."""
    if td < 0 or td >= V.td_state.shape[0] or V.td_state[td] != T.TD_NONE:
        status = A.OPERAND_INVALID
    else:
        status = hpa_free_4k(V, tdr)
    if status == A.SUCCESS:
        _assign4k(V, tdr, A.PT_TDR, td)
        V.td_tdr[td] = tdr
        V.td_hkid[td] = hkid
        V.td_state[td] = T.TD_CREATED
        V.td_chld[td] = 0
        V.td_ntdcs[td] = 0
        V.td_epoch[td] = 0
        V.td_ref[td, 0] = 0
        V.td_ref[td, 1] = 0
    return fw(V, S, ctx, td, A.FW_MNG_CREATE, status, tdr, hkid, 0)


@kernel(cold=True)
def tdh_mng_addcx(V, S, ctx, tdcx, tdr):
    """TDH.MNG.ADDCX: add one TDCS page (before TDH.MNG.INIT)."""
    td = td_of(V, tdr)
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_CREATED and V.td_state[td] != T.TD_KEYED:
        status = A.OP_STATE_INCORRECT
    elif V.td_ntdcs[td] >= V.opt[T.OPT_NTDCS]:
        status = A.OPERAND_INVALID
    else:
        status = hpa_free_4k(V, tdcx)
    if status == A.SUCCESS:
        _assign4k(V, tdcx, A.PT_TDCX, td)
        V.td_tdcs[td, V.td_ntdcs[td]] = tdcx
        V.td_ntdcs[td] += 1
        V.td_chld[td] += 1
    return fw(V, S, ctx, td, A.FW_MNG_ADDCX, status, tdcx, tdr, 0)


@kernel(cold=True)
def tdh_mng_key_config(V, S, ctx, tdr):
    """TDH.MNG.KEY.CONFIG: program the TD's HKID (once, after CREATE)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_CREATED:
        status = A.OP_STATE_INCORRECT
    else:
        V.td_state[td] = T.TD_KEYED
    return fw(V, S, ctx, td, A.FW_MNG_KEY_CONFIG, status, tdr, 0, 0)


@kernel(cold=True)
def tdh_mng_init(V, S, ctx, tdr):
    """TDH.MNG.INIT: needs the key configured and every TDCS page added."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_KEYED:
        status = A.OP_STATE_INCORRECT
    elif V.td_ntdcs[td] != V.opt[T.OPT_NTDCS]:
        status = A.OPERAND_INVALID
    else:
        V.td_state[td] = T.TD_INITIALIZED
    return fw(V, S, ctx, td, A.FW_MNG_INIT, status, tdr, 0, 0)


@kernel(cold=True)
def tdh_vp_create(V, S, ctx, vp, tdvpr, tdr):
    """TDH.VP.CREATE: ``tdvpr`` becomes the TDVPR of emu's vCPU ``vp`` of the TD."""
    td = td_of(V, tdr)
    if td < 0 or vp < 0 or vp >= V.vp_state.shape[0] or V.vp_state[vp] != T.VP_NONE:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_INITIALIZED and V.td_state[td] != T.TD_RUNNABLE:
        status = A.OP_STATE_INCORRECT
    else:
        status = hpa_free_4k(V, tdvpr)
    if status == A.SUCCESS:
        _assign4k(V, tdvpr, A.PT_TDVPR, td)
        V.vp_tdvpr[vp] = tdvpr
        _vp_remember(V, vp, tdvpr)
        V.vp_ntdcx[vp] = 0
        V.vp_state[vp] = T.VP_CREATED
        V.vp_epoch[vp] = -1
        V.td_chld[td] += 1
    return fw(V, S, ctx, td, A.FW_VP_CREATE, status, tdvpr, tdr, 0)


@kernel(cold=True)
def tdh_vp_addcx(V, S, ctx, tdcx, tdvpr):
    """TDH.VP.ADDCX: add one TDCX page to a vCPU (before TDH.VP.INIT)."""
    vp = vp_of(V, tdvpr)
    td = -1
    if vp < 0:
        status = A.OPERAND_INVALID
    elif V.vp_state[vp] != T.VP_CREATED:
        status = A.OP_STATE_INCORRECT
    elif V.vp_ntdcx[vp] >= V.opt[T.OPT_NTDCX]:
        status = A.OPERAND_INVALID
    else:
        td = owner_of(V, tdvpr)
        status = hpa_free_4k(V, tdcx)
    if status == A.SUCCESS:
        _assign4k(V, tdcx, A.PT_TDCX, td)
        V.vp_tdcx[vp, V.vp_ntdcx[vp]] = tdcx
        V.vp_ntdcx[vp] += 1
        V.td_chld[td] += 1
    return fw(V, S, ctx, td, A.FW_VP_ADDCX, status, tdcx, tdvpr, 0)


@kernel(cold=True)
def tdh_vp_init(V, S, ctx, tdvpr):
    """TDH.VP.INIT: needs every TDCX page added."""
    vp = vp_of(V, tdvpr)
    status = A.SUCCESS
    if vp < 0:
        status = A.OPERAND_INVALID
    elif V.vp_state[vp] != T.VP_CREATED:
        status = A.OP_STATE_INCORRECT
    elif V.vp_ntdcx[vp] != V.opt[T.OPT_NTDCX]:
        status = A.OPERAND_INVALID
    else:
        V.vp_state[vp] = T.VP_READY
    return fw(V, S, ctx, owner_of(V, tdvpr) if vp >= 0 else -1, A.FW_VP_INIT, status, tdvpr, 0, 0)


@kernel
def tdh_vp_enter(V, S, ctx, tdvpr):
    """TDH.VP.ENTER: the vCPU enters the TD and is counted in the TD's current TLB epoch."""
    vp = vp_of(V, tdvpr)
    td = -1
    status = A.SUCCESS
    if vp < 0:
        status = A.OPERAND_INVALID
    else:
        td = owner_of(V, tdvpr)
        if V.vp_state[vp] != T.VP_READY or V.td_state[td] != T.TD_RUNNABLE:
            status = A.OP_STATE_INCORRECT
        elif V.vp_epoch[vp] >= 0:
            status = A.OPERAND_BUSY
        else:
            e = V.td_epoch[td]
            V.vp_epoch[vp] = e
            V.td_ref[td, e & 1] += 1
    return fw(V, S, ctx, td, A.FW_VP_ENTER, status, tdvpr, 0, 0)


@kernel
def td_exit(V, vp, td):
    """The vCPU left the TD (the end of TDH.VP.ENTER): it no longer counts in its epoch."""
    e = V.vp_epoch[vp]
    if e >= 0:
        V.td_ref[td, e & 1] -= 1
        V.vp_epoch[vp] = -1


@kernel(cold=True)
def tdh_vp_flush(V, S, ctx, tdvpr):
    """TDH.VP.FLUSH: flush a vCPU's cached state before the HKID is freed (teardown)."""
    vp = vp_of(V, tdvpr)
    status = A.SUCCESS
    if vp < 0:
        status = A.OPERAND_INVALID
    elif V.vp_epoch[vp] >= 0:
        status = A.OPERAND_BUSY
    else:
        V.vp_state[vp] = T.VP_FLUSHED
    return fw(V, S, ctx, owner_of(V, tdvpr) if vp >= 0 else -1, A.FW_VP_FLUSH, status, tdvpr,
              0, 0)


@kernel(cold=True)
def tdh_mng_vpflushdone(V, S, ctx, tdr):
    """TDH.MNG.VPFLUSHDONE: every vCPU of the TD must have been flushed."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    else:
        for v in range(V.vp_tdvpr.shape[0]):
            p = V.vp_tdvpr[v]
            if p >= 0 and owner_of(V, p) == td and V.vp_state[v] != T.VP_FLUSHED:
                status = A.FLUSHVP_NOT_DONE
                break
    return fw(V, S, ctx, td, A.FW_VPFLUSHDONE, status, tdr, 0, 0)


@kernel(cold=True)
def tdh_phymem_cache_wb(V, S, ctx):
    """TDH.PHYMEM.CACHE.WB: write back caches before the HKID is freed."""
    return fw(V, S, ctx, -1, A.FW_CACHE_WB, A.SUCCESS, 0, 0, 0)


@kernel(cold=True)
def tdh_mng_key_freeid(V, S, ctx, tdr):
    """TDH.MNG.KEY.FREEID: the HKID is freed; from now on only reclaim is possible."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] == T.TD_NONE or V.td_state[td] == T.TD_TEARDOWN:
        status = A.OP_STATE_INCORRECT
    else:
        V.td_state[td] = T.TD_TEARDOWN
        V.td_hkid[td] = -1
    return fw(V, S, ctx, td, A.FW_KEY_FREEID, status, tdr, 0, 0)


# --- build time -------------------------------------------------------------------------------------

@kernel(cold=True)
def tdh_mem_page_add(V, S, ctx, gfn, tdr, hpa, source):
    """TDH.MEM.PAGE.ADD: build-time 4K page, copied from ``source``; the entry becomes MAPPED."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_INITIALIZED:
        status = A.OP_STATE_INCORRECT
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, 0)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_FREE:
            status = A.EPT_ENTRY_STATE_INCORRECT
        else:
            status = hpa_free_4k(V, hpa)
    if status == A.SUCCESS:
        _assign4k(V, hpa, A.PT_REG, td)
        V.sept4k[g] = A.SEPT_MAPPED
        S.g_pfn[g] = hpa
        V.td_chld[td] += 1
    return fw(V, S, ctx, td, A.FW_PAGE_ADD, status, gfn, hpa, source)


@kernel(cold=True)
def tdh_mr_extend(V, S, ctx, gfn, tdr):
    """TDH.MR.EXTEND: extend the TD's measurement with 256 bytes of an added page."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_INITIALIZED:
        status = A.OP_STATE_INCORRECT
    return fw(V, S, ctx, td, A.FW_MR_EXTEND, status, gfn, 0, 0)


@kernel(cold=True)
def tdh_mr_finalize(V, S, ctx, tdr):
    """TDH.MR.FINALIZE: the build is over, vCPUs may run; TLB tracking is required from now."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    elif V.td_state[td] != T.TD_INITIALIZED:
        status = A.OP_STATE_INCORRECT
    else:
        V.td_state[td] = T.TD_RUNNABLE
    return fw(V, S, ctx, td, A.FW_MR_FINALIZE, status, tdr, 0, 0)


# --- Secure EPT tables ------------------------------------------------------------------------------

@kernel
def _live(V, td):
    return V.td_state[td] == T.TD_INITIALIZED or V.td_state[td] == T.TD_RUNNABLE


@kernel
def tdh_mem_sept_add(V, S, ctx, gfn, level, tdr, page):
    """TDH.MEM.SEPT.ADD: link a new S-EPT page under the entry at ``level`` (1: the page holds
    4K entries, 2: 2M entries, 3: 1G entries). The entry must be FREE (§2.3); the page is a free
    4K page, which under Dynamic PAMT needs a page pair in its region (§1.2)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    if td < 0 or level < 1 or level > 3:
        status = A.OPERAND_INVALID
    elif not _live(V, td):
        status = A.OP_STATE_INCORRECT
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_FREE:
            status = A.EPT_ENTRY_STATE_INCORRECT
        else:
            status = hpa_free_4k(V, page)
    if status == A.SUCCESS:
        _assign4k(V, page, A.PT_EPT, td)
        V.td_chld[td] += 1
        if level == 1:
            V.sept2m[g >> 9] = A.SEPT_NL_MAPPED
            V.spt4k[g >> 9] = page
        elif level == 2:
            V.sept1g[g >> 18] = A.SEPT_NL_MAPPED
            V.spt2m[g >> 18] = page
        else:
            V.spt1g[td, gfn >> 27] = page
    return fw(V, S, ctx, td, A.FW_SEPT_ADD, status, gfn, level, page)


@kernel(cold=True)
def _table_empty(V, S, td, g, level):
    """Every entry of the S-EPT page under the entry at ``level`` is FREE."""
    if level == 1:
        h = g & ~(P2M - 1)
        for i in range(P2M):
            if V.sept4k[h + i] != A.SEPT_FREE:
                return False
    elif level == 2:
        h = (g >> 9) & ~(P2M - 1)
        for i in range(P2M):
            if V.sept2m[h + i] != A.SEPT_FREE:
                return False
    else:
        # the TD's own 1G entries in this TD-local 512G range
        base = S.vm_gfn_base[td]
        q = (g - base) >> 27
        first = (base + (q << 27)) >> 18
        last = min(base + S.vm_pages[td], base + ((q + 1) << 27))
        for r in range(first, (last + (1 << 18) - 1) >> 18):
            if V.sept1g[r] != A.SEPT_FREE:
                return False
    return True


@kernel(cold=True)
def tdh_mem_sept_remove(V, S, ctx, gfn, level, tdr):
    """TDH.MEM.SEPT.REMOVE: unlink an empty S-EPT page (blocked and tracked while the TD may
    run); RCX returns the page with the removal hint (§1.2)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    page = -1
    if td < 0 or level < 1 or level > 3:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_NL_MAPPED and s != A.SEPT_NL_BLOCKED:
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif _tracking_required(V, td) and s != A.SEPT_NL_BLOCKED:
            status = A.GPA_RANGE_NOT_BLOCKED
        elif _tracking_required(V, td) and not tracked(V, td, _bepoch(V, S, g, level, s)):
            status = A.TLB_TRACKING_NOT_DONE
        elif not _table_empty(V, S, td, g, level):
            status = A.EPT_PAGE_NOT_FREE
    if status == A.SUCCESS:
        if level == 1:
            page = V.spt4k[g >> 9]
            V.spt4k[g >> 9] = -1
            V.sept2m[g >> 9] = A.SEPT_FREE
        elif level == 2:
            page = V.spt2m[g >> 18]
            V.spt2m[g >> 18] = -1
            V.sept1g[g >> 18] = A.SEPT_FREE
        else:
            page = V.spt1g[td, gfn >> 27]
            V.spt1g[td, gfn >> 27] = -1
        hint = _release4k(V, page)
        V.td_chld[td] -= 1
        V.out[0] = (int(page) << 12) | (int(hint) << 62)
    return fw(V, S, ctx, td, A.FW_SEPT_REMOVE, status, gfn, level, page)


# --- private pages --------------------------------------------------------------------------------

@kernel(cold=True)
def _range_free_2m(V, pfn):
    """The 2M variant of the free-range check: the 2M entry NDA (so no page pair) and no
    Dynamic PAMT page inside the range (§2.5, PAGE.AUG; inferred from the module's code)."""
    if not _in_host(V, pfn) or (pfn & (P2M - 1)) != 0:
        return A.OPERAND_INVALID
    if V.pamt2m_pt[pfn >> 9] != A.PT_NDA:
        return A.PAGE_METADATA_INCORRECT
    for i in range(P2M):
        e = V.pamt4k[pfn + i]
        if dpamt(V):
            if e & T.BITMAP_BIT:
                return A.PAGE_METADATA_INCORRECT
        elif (e & T.PT_MASK) != A.PT_NDA:
            return A.PAGE_METADATA_INCORRECT
    return A.SUCCESS


@kernel
def tdh_mem_page_aug(V, S, ctx, gfn, level, tdr, hpa):
    """TDH.MEM.PAGE.AUG: add a private page at runtime, 4K or 2M; the entry becomes PENDING
    until the guest accepts it (§2.5)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    if td < 0 or level < 0 or level > 1:
        status = A.OPERAND_INVALID
    elif not _live(V, td):
        status = A.OP_STATE_INCORRECT
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_FREE and s != A.SEPT_REMOVED:
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif level == 0:
            status = hpa_free_4k(V, hpa)
        else:
            status = _range_free_2m(V, hpa)
    if status == A.SUCCESS:
        if level == 0:
            _assign4k(V, hpa, A.PT_REG, td)
            V.sept4k[g] = A.SEPT_PENDING
            S.g_pfn[g] = hpa
            V.td_chld[td] += 1
        else:
            r = hpa >> 9
            V.pamt2m_pt[r] = A.PT_REG
            V.pamt2m_owner[r] = td + 1
            V.sept2m[g >> 9] = A.SEPT_PENDING
            h = g & ~(P2M - 1)
            for i in range(P2M):
                S.g_pfn[h + i] = hpa + i
            V.td_chld[td] += P2M
    return fw(V, S, ctx, td, A.FW_PAGE_AUG, status, gfn, level, hpa)


@kernel(cold=True)
def tdh_mem_range_block(V, S, ctx, gfn, level, tdr):
    """TDH.MEM.RANGE.BLOCK: block the entry at ``level`` and record the TD's epoch (§2.4)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0 or level < 0 or level > 2:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s == A.SEPT_BLOCKED or s == A.SEPT_PENDING_BLOCKED or s == A.SEPT_NL_BLOCKED:
            status = A.GPA_RANGE_ALREADY_BLOCKED
        elif s == A.SEPT_MAPPED or s == A.SEPT_BLOCKEDW:
            set_entry(V, S, td, g, level, A.SEPT_BLOCKED)
        elif s == A.SEPT_PENDING or s == A.SEPT_PENDING_BLOCKEDW:
            set_entry(V, S, td, g, level, A.SEPT_PENDING_BLOCKED)
        elif s == A.SEPT_NL_MAPPED and level > 0:
            set_entry(V, S, td, g, level, A.SEPT_NL_BLOCKED)
        else:
            status = A.EPT_ENTRY_STATE_INCORRECT
        if status == A.SUCCESS:
            e = V.td_epoch[td]
            if s == A.SEPT_NL_MAPPED:
                pt = V.spt4k[g >> 9] if level == 1 else V.spt2m[g >> 18]
                V.pamt4k_bepoch[pt >> 9] = e
            elif level == 1:
                V.pamt2m_bepoch[S.g_pfn[g] >> 9] = e
            else:
                V.pamt4k_bepoch[S.g_pfn[g] >> 9] = e
    return fw(V, S, ctx, td, A.FW_RANGE_BLOCK, status, gfn, level, 0)


@kernel(cold=True)
def tdh_mem_range_unblock(V, S, ctx, gfn, level, tdr):
    """TDH.MEM.RANGE.UNBLOCK: undo a BLOCK once the TLB tracking is done."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0 or level < 0 or level > 2:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_BLOCKED and s != A.SEPT_PENDING_BLOCKED and s != A.SEPT_NL_BLOCKED:
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif not tracked(V, td, _bepoch(V, S, g, level, s)):
            status = A.TLB_TRACKING_NOT_DONE
        else:
            set_entry(V, S, td, g, level, _unblocked(s))
    return fw(V, S, ctx, td, A.FW_RANGE_UNBLOCK, status, gfn, level, 0)


@kernel(cold=True)
def tdh_mem_track(V, S, ctx, tdr):
    """TDH.MEM.TRACK: advance the TD's TLB epoch; busy while a vCPU still counts in the
    previous one (§2.4)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    if td < 0:
        status = A.OPERAND_INVALID
    else:
        e = V.td_epoch[td]
        if e > 0 and V.td_ref[td, (e - 1) & 1] != 0:
            status = A.PREVIOUS_TLB_EPOCH_BUSY
        else:
            V.td_epoch[td] = e + 1
    return fw(V, S, ctx, td, A.FW_TRACK, status, tdr, 0, 0)


@kernel(cold=True)
def tdh_mem_page_remove(V, S, ctx, gfn, level, tdr):
    """TDH.MEM.PAGE.REMOVE: remove a private page (blocked and tracked while the TD may run);
    RCX returns its HPA with the removal hint (§2.5)."""
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    s = 0
    if td < 0 or level < 0 or level > 2:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif not _is_leaf_state(s):
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif _tracking_required(V, td) and s != A.SEPT_BLOCKED and s != A.SEPT_PENDING_BLOCKED:
            status = A.GPA_RANGE_NOT_BLOCKED
        elif _tracking_required(V, td) and not tracked(V, td, _bepoch(V, S, g, level, s)):
            status = A.TLB_TRACKING_NOT_DONE
    hpa = -1
    if status == A.SUCCESS:
        hint = 0
        if level == 0:
            hpa = S.g_pfn[g]
            hint = _release4k(V, hpa)
            V.sept4k[g] = A.SEPT_FREE
            V.td_chld[td] -= 1
        else:
            h = g & ~(P2M - 1)
            hpa = S.g_pfn[h]
            V.pamt2m_pt[hpa >> 9] = A.PT_NDA
            V.pamt2m_owner[hpa >> 9] = 0
            V.sept2m[g >> 9] = A.SEPT_FREE
            V.td_chld[td] -= P2M
        V.out[0] = (int(hpa) << 12) | (int(hint) << 62)
    return fw(V, S, ctx, td, A.FW_PAGE_REMOVE, status, gfn, level, hpa)


@kernel(cold=True)
def _pair_page_free(V, pfn):
    """A page offered as half of a Dynamic PAMT pair must be free and not already a PAMT page."""
    if not _in_host(V, pfn):
        return A.OPERAND_ADDR_RANGE_ERROR
    pt2 = V.pamt2m_pt[pfn >> 9]
    if pt2 != A.PT_NDA and pt2 != A.PT_PAMT:
        return A.PAGE_NOT_FREE
    if pt2 == A.PT_PAMT and pt_of(V, pfn) != A.PT_NDA:
        return A.PAGE_NOT_FREE
    if V.pamt4k[pfn] & T.BITMAP_BIT:
        return A.PAGE_NOT_FREE
    return A.SUCCESS


@kernel(cold=True)
def tdh_mem_page_demote(V, S, ctx, gfn, level, tdr, page, pair0, pair1):
    """TDH.MEM.PAGE.DEMOTE: split a 2M leaf into 512 4K leaves in the new S-EPT ``page``.

    Children copy the parent's state unblocked (PENDING stays PENDING). Under Dynamic PAMT the
    data range's 2M PAMT entry becomes a node holding the pair (R12/R13) with a page count of
    512, and the new S-EPT page counts in its own region (§2.5, §4.3).
    """
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    s = 0
    if td < 0 or level != 1:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif (s != A.SEPT_MAPPED and s != A.SEPT_BLOCKED and s != A.SEPT_PENDING
              and s != A.SEPT_PENDING_BLOCKED):
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif _tracking_required(V, td) and s != A.SEPT_BLOCKED and s != A.SEPT_PENDING_BLOCKED:
            status = A.GPA_RANGE_NOT_BLOCKED
        elif _tracking_required(V, td) and not tracked(V, td, _bepoch(V, S, g, level, s)):
            status = A.TLB_TRACKING_NOT_DONE
        else:
            status = hpa_free_4k(V, page)
            if status == A.SUCCESS and dpamt(V):
                if pair0 == pair1:
                    status = A.OPERAND_INVALID
                else:
                    status = _pair_page_free(V, pair0)
                    if status == A.SUCCESS:
                        status = _pair_page_free(V, pair1)
    if status == A.SUCCESS:
        h = g & ~(P2M - 1)
        hpa = S.g_pfn[h]
        r = hpa >> 9
        if dpamt(V):
            V.pamt4k[pair0] |= T.BITMAP_BIT
            V.pamt4k[pair1] |= T.BITMAP_BIT
            V.pamt2m_pt[r] = A.PT_PAMT
            V.pamt2m_pair[r, 0] = pair0
            V.pamt2m_pair[r, 1] = pair1
            V.pamt2m_count[r] = P2M
            V.stat[T.ST_PAIRS] += 1
            if V.stat[T.ST_PAIRS] > V.stat[T.ST_PAIRS_PEAK]:
                V.stat[T.ST_PAIRS_PEAK] = V.stat[T.ST_PAIRS]
        else:
            V.pamt2m_pt[r] = A.PT_NDA
        V.pamt2m_owner[r] = 0
        for i in range(P2M):
            _set4k(V, hpa + i, A.PT_REG, td)
        child = _unblocked(s)
        for i in range(P2M):
            V.sept4k[h + i] = child
        V.sept2m[g >> 9] = A.SEPT_NL_MAPPED
        V.spt4k[g >> 9] = page
        _assign4k(V, page, A.PT_EPT, td)
        V.td_chld[td] += 1
    return fw(V, S, ctx, td, A.FW_DEMOTE, status, gfn, level, page)


@kernel(cold=True)
def tdh_mem_page_promote(V, S, ctx, gfn, level, tdr):
    """TDH.MEM.PAGE.PROMOTE: merge 512 4K leaves back into a 2M leaf (§2.5).

    All 512 must be in the same state, MAPPED or PENDING, and map 2M-aligned contiguous
    memory (else ``EPT_INVALID_PROMOTE_CONDITIONS``). The freed S-EPT page is returned in RCX
    with the removal hint; under Dynamic PAMT the pair comes back in R12/R13.
    """
    td = td_of(V, tdr)
    status = A.SUCCESS
    g = 0
    s = 0
    if td < 0 or level != 1:
        status = A.OPERAND_INVALID
    else:
        g = S.vm_gfn_base[td] + gfn
        s = entry(V, S, td, g, level)
        if s < 0:
            status = A.EPT_WALK_FAILED
        elif s != A.SEPT_NL_MAPPED and s != A.SEPT_NL_BLOCKED:
            status = A.EPT_ENTRY_STATE_INCORRECT
        elif _tracking_required(V, td) and s != A.SEPT_NL_BLOCKED:
            status = A.GPA_RANGE_NOT_BLOCKED
        elif _tracking_required(V, td) and not tracked(V, td, _bepoch(V, S, g, level, s)):
            status = A.TLB_TRACKING_NOT_DONE
        else:
            h = g & ~(P2M - 1)
            s0 = V.sept4k[h]
            hpa0 = S.g_pfn[h]
            if (s0 != A.SEPT_MAPPED and s0 != A.SEPT_PENDING) or (hpa0 & (P2M - 1)) != 0:
                status = A.EPT_INVALID_PROMOTE_CONDITIONS
            else:
                for i in range(P2M):
                    if V.sept4k[h + i] != s0 or S.g_pfn[h + i] != hpa0 + i:
                        status = A.EPT_INVALID_PROMOTE_CONDITIONS
                        break
    page = -1
    if status == A.SUCCESS:
        h = g & ~(P2M - 1)
        s0 = V.sept4k[h]
        hpa0 = S.g_pfn[h]
        r = hpa0 >> 9
        if dpamt(V):
            p0 = V.pamt2m_pair[r, 0]
            p1 = V.pamt2m_pair[r, 1]
            V.pamt4k[p0] &= ~T.BITMAP_BIT & 0xFFFF
            V.pamt4k[p1] &= ~T.BITMAP_BIT & 0xFFFF
            V.pamt2m_pair[r, 0] = -1
            V.pamt2m_pair[r, 1] = -1
            V.pamt2m_count[r] = 0
            V.out[6] = p0
            V.out[7] = p1
            V.stat[T.ST_PAIRS] -= 1
        for i in range(P2M):
            V.pamt4k[hpa0 + i] = V.pamt4k[hpa0 + i] & T.BITMAP_BIT
            V.sept4k[h + i] = A.SEPT_FREE
        V.pamt2m_pt[r] = A.PT_REG
        V.pamt2m_owner[r] = td + 1
        page = V.spt4k[g >> 9]
        V.spt4k[g >> 9] = -1
        V.sept2m[g >> 9] = s0
        hint = _release4k(V, page)
        V.td_chld[td] -= 1
        V.out[0] = (int(page) << 12) | (int(hint) << 62)
    return fw(V, S, ctx, td, A.FW_PROMOTE, status, gfn, level, page)


# --- physical pages -------------------------------------------------------------------------------

@kernel(cold=True)
def tdh_phymem_page_reclaim(V, S, ctx, hpa):
    """TDH.PHYMEM.PAGE.RECLAIM: take back a control or S-EPT page of a torn-down TD (§2.5).

    Reclaiming a TD's pages before its HKID is freed returns ``TDX_OP_STATE_INCORRECT``
    (chosen: the reference gives the rule, not the code). The TDR goes last: while the TD has
    children it fails with ``TD_ASSOCIATED_PAGES_EXIST``.
    """
    status = A.SUCCESS
    td = -1
    if not _in_host(V, hpa):
        status = A.OPERAND_ADDR_RANGE_ERROR
    else:
        pt = pt_of(V, hpa)
        if pt == A.PT_NDA or pt == A.PT_RSVD or (dpamt(V) and V.pamt2m_pt[hpa >> 9] != A.PT_PAMT):
            status = A.PAGE_METADATA_INCORRECT
        else:
            td = owner_of(V, hpa)
            if V.td_state[td] != T.TD_TEARDOWN:
                status = A.OP_STATE_INCORRECT
            elif pt == A.PT_TDR and V.td_chld[td] != 0:
                status = A.TD_ASSOCIATED_PAGES_EXIST
    if status == A.SUCCESS:
        pt = pt_of(V, hpa)
        if pt == A.PT_TDVPR:
            _vp_forget(V, hpa)
        hint = _release4k(V, hpa)
        if pt == A.PT_TDR:
            V.td_state[td] = T.TD_NONE
            V.td_tdr[td] = -1
            V.td_ntdcs[td] = 0
        else:
            V.td_chld[td] -= 1
        V.out[0] = (int(hpa) << 12) | (int(hint) << 62)
    return fw(V, S, ctx, td, A.FW_RECLAIM, status, hpa, 0, 0)


@kernel(cold=True)
def tdh_phymem_page_wbinvd(V, S, ctx, hpa):
    """TDH.PHYMEM.PAGE.WBINVD: write back and invalidate a page's cache lines (HKID-keyed)."""
    status = A.SUCCESS if _in_host(V, hpa) else A.OPERAND_ADDR_RANGE_ERROR
    return fw(V, S, ctx, -1, A.FW_WBINVD, status, hpa, 0, 0)


@kernel(cold=True)
def tdh_phymem_pamt_add(V, S, ctx, hpa, pair0, pair1):
    """TDH.PHYMEM.PAMT.ADD: install the page pair holding the 4K PAMT entries of the 2M region
    at ``hpa`` (§2.5). The region must have no pair and not be used at 2M
    (``HPA_RANGE_NOT_FREE``); both pages must be free (``PAGE_NOT_FREE``)."""
    status = A.SUCCESS
    if not dpamt(V):
        status = A.OPERAND_INVALID
    elif not _in_host(V, hpa):
        status = A.OPERAND_ADDR_RANGE_ERROR
    elif (hpa & (P2M - 1)) != 0 or pair0 == pair1:
        status = A.OPERAND_INVALID
    elif V.pamt2m_pt[hpa >> 9] != A.PT_NDA:
        status = A.HPA_RANGE_NOT_FREE
    else:
        status = _pair_page_free(V, pair0)
        if status == A.SUCCESS:
            status = _pair_page_free(V, pair1)
    if status == A.SUCCESS:
        r = hpa >> 9
        V.pamt4k[pair0] |= T.BITMAP_BIT
        V.pamt4k[pair1] |= T.BITMAP_BIT
        V.pamt2m_pt[r] = A.PT_PAMT
        V.pamt2m_pair[r, 0] = pair0
        V.pamt2m_pair[r, 1] = pair1
        V.pamt2m_count[r] = 0
        for i in range(P2M):
            V.pamt4k[hpa + i] = V.pamt4k[hpa + i] & T.BITMAP_BIT
        V.stat[T.ST_PAIRS] += 1
        if V.stat[T.ST_PAIRS] > V.stat[T.ST_PAIRS_PEAK]:
            V.stat[T.ST_PAIRS_PEAK] = V.stat[T.ST_PAIRS]
    return fw(V, S, ctx, -1, A.FW_PAMT_ADD, status, hpa, pair0, pair1)


@kernel(cold=True)
def tdh_phymem_pamt_remove(V, S, ctx, hpa):
    """TDH.PHYMEM.PAMT.REMOVE: take the pair back once every 4K entry of the region is NDA;
    RDX and R8 return the pair (§2.5)."""
    status = A.SUCCESS
    if not dpamt(V):
        status = A.OPERAND_INVALID
    elif not _in_host(V, hpa):
        status = A.OPERAND_ADDR_RANGE_ERROR
    elif (hpa & (P2M - 1)) != 0:
        status = A.OPERAND_INVALID
    elif V.pamt2m_pt[hpa >> 9] != A.PT_PAMT:
        status = A.NO_PAMT_PAGE_PAIR
    else:
        for i in range(P2M):
            if pt_of(V, hpa + i) != A.PT_NDA:
                status = A.PAMT_PAGE_NOT_EMPTY
                break
    if status == A.SUCCESS:
        r = hpa >> 9
        p0 = V.pamt2m_pair[r, 0]
        p1 = V.pamt2m_pair[r, 1]
        V.pamt4k[p0] &= ~T.BITMAP_BIT & 0xFFFF
        V.pamt4k[p1] &= ~T.BITMAP_BIT & 0xFFFF
        V.pamt2m_pt[r] = A.PT_NDA
        V.pamt2m_pair[r, 0] = -1
        V.pamt2m_pair[r, 1] = -1
        V.out[1] = p0
        V.out[2] = p1
        V.stat[T.ST_PAIRS] -= 1
    return fw(V, S, ctx, -1, A.FW_PAMT_REMOVE, status, hpa, 0, 0)


# --- the guest ------------------------------------------------------------------------------------

@kernel
def tdg_mem_page_accept(V, S, ctx, td, gfn, level):
    """TDG.MEM.PAGE.ACCEPT from the guest at ``level`` (§2.5): a PENDING leaf of that size is
    zeroed and becomes MAPPED; a larger host mapping (or none) ends in a TD exit
    (``EXIT_EPT_VIOLATION``); a smaller one returns ``PAGE_SIZE_MISMATCH``."""
    g = S.vm_gfn_base[td] + gfn
    status = A.SUCCESS
    if level < 0 or level > 1:
        status = A.OPERAND_INVALID
    else:
        s1 = V.sept1g[g >> 18] if V.spt1g[td, gfn >> 27] >= 0 else A.SEPT_FREE
        s2 = V.sept2m[g >> 9]
        if s1 != A.SEPT_NL_MAPPED:
            status = A.EXIT_EPT_VIOLATION
        elif level == 1:
            if s2 == A.SEPT_PENDING:
                V.sept2m[g >> 9] = A.SEPT_MAPPED
            elif s2 == A.SEPT_MAPPED:
                status = A.PAGE_ALREADY_ACCEPTED
            elif s2 == A.SEPT_NL_MAPPED or s2 == A.SEPT_NL_BLOCKED:
                status = A.PAGE_SIZE_MISMATCH
            else:
                status = A.EXIT_EPT_VIOLATION
        elif s2 != A.SEPT_NL_MAPPED:
            status = A.EXIT_EPT_VIOLATION
        else:
            s = V.sept4k[g]
            if s == A.SEPT_PENDING:
                V.sept4k[g] = A.SEPT_MAPPED
            elif s == A.SEPT_MAPPED:
                status = A.PAGE_ALREADY_ACCEPTED
            else:
                status = A.EXIT_EPT_VIOLATION
    ns = S.cost[V.cost_base[A.FW_ACCEPT]]
    if status == A.SUCCESS and level == 1:
        ns = S.cost[V.cost_base[A.N_CALLS]]     # a 2M accept zeroes 512 pages
    clock.charge(S, ctx, ns)
    S.fw_count[A.FW_ACCEPT] += 1
    S.fw_ns[A.FW_ACCEPT] += ns
    if status < 0:
        S.fw_fail[A.FW_ACCEPT] += 1
        V.fail_status[A.FW_ACCEPT, status_index(V, status)] += 1
    clock.emit(S, T.POINT_ACCEPT, ctx, td, -1, gfn, level, status, ns, 0, 0)
    return status
