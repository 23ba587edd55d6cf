"""KVM's TDX glue: the vendor points of ``emu.model.vendor_ops`` in terms of SEAMCALLs, with
the Dynamic PAMT allocation policies of the debate.

Flows (``reference/tdx.md`` §3-§4): a TD is created with its TDR and TDCS control pages, vCPUs
with TDVPR and TDCX; the initial image is added at 4K with PAGE.ADD and measured; the TD is
finalized when its vCPUs first run; runtime memory is AUGed at 4K or 2M and accepted by the
guest; every S-EPT page is linked with SEPT.ADD; a leaf is zapped with BLOCK -> TRACK -> kick
every vCPU -> PAGE.REMOVE -> WBINVD, and split with BLOCK -> TRACK -> kick -> DEMOTE, all under
write ``mmu_lock``; teardown removes the leaves, frees the HKID, then reclaims S-EPT pages, vCPU
pages, TDCS pages and the TDR last.

Where Dynamic PAMT pages come from, per policy (``V.opt[OPT_POLICY]``; what each claims is in
``emu_tdx.policies``):

==============  =================================  ==============================  =============
policy          S-EPT page's pair                  4K data page's pair             split pair
==============  =================================  ==============================  =============
running-vcpu    at link, running vCPU's cache      before AUG, vCPU's cache        vCPU's cache,
                (per-VM cache without a vCPU)                                      else per-VM
vcpu-pool       ``phys_prepare``, vCPU's pool      ``phys_prepare``, vCPU's pool   vCPU's pool,
                (allocates in atomic context                                       else atomic
                without a vCPU)                                                    allocation
kmem-cache      held by the S-EPT kmem cache       as running-vcpu                 as running-
                (constructor), kept when freed                                     vcpu
topup           installed when the S-EPT page      as running-vcpu                 as running-
                cache is topped up                                                 vcpu
gmem-prepare    as running-vcpu                    when guest_memfd prepares the   as running-
                                                   folio (so 2M maps are refused)  vcpu
lazy            after MISSING_PAMT_PAGE_PAIR,      after MISSING_PAMT_PAGE_PAIR,   allocated in
                allocated in atomic context        same                            atomic ctx
==============  =================================  ==============================  =============
"""
from emu.jit import kernel
from emu.model import clock, host, pools
from emu.model import consts as C
from emu.model import state as st

from emu_tdx import abi as A
from emu_tdx import dpamt as D
from emu_tdx import module as M
from emu_tdx import state as T

CNT = st.N_CNT
P2M = 512


@kernel
def _policy(V):
    return V.opt[T.OPT_POLICY]


@kernel
def _gv(S, vm, vcpu):
    return S.vm_vcpu_base[vm] + vcpu


@kernel
def _tdr(V, vm):
    return V.td_tdr[vm]


@kernel
def _pair_source_pool(V, S, vm, vcpu):
    """The cache a pair is drawn from on this path (-1: the page allocator)."""
    p = _policy(V)
    if p == T.POL_LAZY:
        return -1
    if vcpu >= 0:
        return T.POOL_PAMT_VCPU
    if p == T.POL_VCPU_POOL:
        return -1
    return T.POOL_PAMT_VM


@kernel
def _pair_source_inst(S, vm, vcpu):
    return _gv(S, vm, vcpu) if vcpu >= 0 else vm


@kernel
def _sept_pages_hold_pamt(V):
    """Policies whose S-EPT pages got their PAMT before KVM ever takes them."""
    p = _policy(V)
    return M.dpamt(V) and (p == T.POL_KMEM_CACHE or p == T.POL_TOPUP)


@kernel
def _get_at_map(V):
    """Policies that get a data page's PAMT right before AUG/ADD."""
    p = _policy(V)
    return p == T.POL_RUNNING_VCPU or p == T.POL_KMEM_CACHE or p == T.POL_TOPUP


# --- control pages --------------------------------------------------------------------------------

@kernel(cold=True)
def control_page_alloc(V, S, ctx, vm):
    """``tdx_alloc_control_page``: a page plus its Dynamic PAMT, from the page allocator."""
    pfn = host.alloc_4k(S, ctx, vm, C.OWN_FW_CONTROL, T.SITE_CONTROL)
    if pfn < 0:
        return -1
    if D.pamt_get(V, S, ctx, vm, pfn, -1, 0) != 0:
        host.free_frames_one(S, ctx, vm, pfn)
        return -1
    return pfn


@kernel(cold=True)
def control_page_free(V, S, ctx, vm, pfn):
    """Reclaim a control or S-EPT page of a torn-down TD, then ``tdx_free_control_page``."""
    status = M.tdh_phymem_page_reclaim(V, S, ctx, pfn)
    if status != A.SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_RECLAIM, status)
        host.set_owner(S, pfn, 1, C.OWN_LEAKED)
        return
    D.removal_hint(V, S, ctx, vm, pfn, (V.out[0] >> 62) & 1)
    M.tdh_phymem_page_wbinvd(V, S, ctx, pfn)
    D.pamt_put(V, S, ctx, vm, pfn)
    host.free_frames_one(S, ctx, vm, pfn)


@kernel(cold=True)
def _fail(S, ctx, vm, call, status):
    clock.error(S, ctx, vm, C.ERR_FW_FAILURE, call, status)
    return -1


# --- TD and vCPU lifecycle ------------------------------------------------------------------------

@kernel(cold=True)
def _host_init(V, S, ctx):
    """Reserve the static part of PAMT (whole-TDMR arrays; §1.1, §1.2) and, with Dynamic PAMT,
    the kernel's refcount array (§3.1); the frame counts come from emu_tdx.pamt_sizes."""
    n = V.stat[T.ST_STATIC_PAMT_PAGES] + V.stat[T.ST_REFCOUNT_PAGES]
    while n >= P2M:
        if host.alloc_2m(S, ctx, -1, C.OWN_STATIC_META, T.SITE_CONTROL) < 0:
            break
        n -= P2M
    for _ in range(n):
        if host.alloc_4k(S, ctx, -1, C.OWN_STATIC_META, T.SITE_CONTROL) < 0:
            break


@kernel(cold=True)
def _vm_init(V, S, ctx, vm):
    """``tdx_td_init``: TDR, TDH.MNG.CREATE, the TDCS pages, KEY.CONFIG, MNG.INIT."""
    tdr = control_page_alloc(V, S, ctx, vm)
    if tdr < 0:
        return -1
    status = M.tdh_mng_create(V, S, ctx, vm, tdr, vm + 1)
    if status != A.SUCCESS:
        return _fail(S, ctx, vm, A.FW_MNG_CREATE, status)
    for _ in range(V.opt[T.OPT_NTDCS]):
        p = control_page_alloc(V, S, ctx, vm)
        if p < 0:
            return -1
        status = M.tdh_mng_addcx(V, S, ctx, p, tdr)
        if status != A.SUCCESS:
            return _fail(S, ctx, vm, A.FW_MNG_ADDCX, status)
    status = M.tdh_mng_key_config(V, S, ctx, tdr)
    if status == A.SUCCESS:
        status = M.tdh_mng_init(V, S, ctx, tdr)
    if status != A.SUCCESS:
        return _fail(S, ctx, vm, A.FW_MNG_INIT, status)
    return 0


@kernel(cold=True)
def _vcpu_init(V, S, ctx, vm, vcpu):
    """``tdx_vcpu_init``: TDVPR, TDH.VP.CREATE, the TDCX pages, TDH.VP.INIT."""
    tdr = _tdr(V, vm)
    gv = _gv(S, vm, vcpu)
    tdvpr = control_page_alloc(V, S, ctx, vm)
    if tdvpr < 0:
        return -1
    status = M.tdh_vp_create(V, S, ctx, gv, tdvpr, tdr)
    if status != A.SUCCESS:
        return _fail(S, ctx, vm, A.FW_VP_CREATE, status)
    for _ in range(V.opt[T.OPT_NTDCX]):
        p = control_page_alloc(V, S, ctx, vm)
        if p < 0:
            return -1
        status = M.tdh_vp_addcx(V, S, ctx, p, tdvpr)
        if status != A.SUCCESS:
            return _fail(S, ctx, vm, A.FW_VP_ADDCX, status)
    status = M.tdh_vp_init(V, S, ctx, tdvpr)
    if status != A.SUCCESS:
        return _fail(S, ctx, vm, A.FW_VP_INIT, status)
    return 0


@kernel
def _ensure_running(V, S, ctx, vm):
    """The first time a vCPU runs, the build is over: TDH.MR.FINALIZE, then every vCPU enters."""
    if V.td_state[vm] == T.TD_INITIALIZED:
        _finalize(V, S, ctx, vm)


@kernel(cold=True)
def _finalize(V, S, ctx, vm):
    M.tdh_mr_finalize(V, S, ctx, _tdr(V, vm))
    vb = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        if S.vcpu_alive[vb + i] != 0 and V.vp_state[vb + i] == T.VP_READY:
            M.tdh_vp_enter(V, S, ctx, V.vp_tdvpr[vb + i])


@kernel
def _vcpu_exit(V, S, ctx, vm, vcpu):
    _ensure_running(V, S, ctx, vm)
    M.td_exit(V, _gv(S, vm, vcpu), vm)


@kernel
def _vcpu_enter(V, S, ctx, vm, vcpu):
    gv = _gv(S, vm, vcpu)
    if V.td_state[vm] == T.TD_RUNNABLE and V.vp_epoch[gv] < 0:
        M.tdh_vp_enter(V, S, ctx, V.vp_tdvpr[gv])


@kernel(cold=True)
def tdx_track(V, S, ctx, vm):
    """``tdx_track``: TDH.MEM.TRACK, then kick every vCPU out of the guest once (§2.4)."""
    S.cnt[CNT + T.CN_TRACKS] += 1
    status = M.tdh_mem_track(V, S, ctx, _tdr(V, vm))
    vb = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        gv = vb + i
        if V.vp_epoch[gv] >= 0:
            S.cnt[CNT + T.CN_TRACK_KICKS] += 1
            clock.charge(S, ctx, S.cost[st.COST_KICK])
            clock.charge(S, gv, S.cost[st.COST_EXIT])
            M.td_exit(V, gv, vm)
            M.tdh_vp_enter(V, S, gv, V.vp_tdvpr[gv])
    if status == A.PREVIOUS_TLB_EPOCH_BUSY:
        # tdh_do_no_vcpus: every vCPU is out now, so the retry succeeds
        S.cnt[CNT + T.CN_BUSY_RETRIES] += 1
        status = M.tdh_mem_track(V, S, ctx, _tdr(V, vm))
    return status


# --- caches ---------------------------------------------------------------------------------------

@kernel(cold=True)
def _fill_sept_with_pamt(V, S, ctx, vm, pool, inst):
    """Top up an S-EPT page cache whose pages carry their PAMT (kmem-cache: from the kmem cache,
    whose constructor got the PAMT; topup: ``tdx_alloc_control_page`` per page)."""
    n = S.pool_count[pool, inst]
    if n >= S.pool_min[pool]:
        return
    before = n
    while n < S.pool_cap[pool]:
        pfn = -1
        if _policy(V) == T.POL_KMEM_CACHE and S.pool_count[T.POOL_KMEM, 0] > 0:
            k = S.pool_count[T.POOL_KMEM, 0] - 1
            pfn = S.pool_pfns[T.POOL_KMEM, 0, k]
            S.pool_pfns[T.POOL_KMEM, 0, k] = -1
            S.pool_count[T.POOL_KMEM, 0] = k
        else:
            site = T.SITE_KMEM_CTOR if _policy(V) == T.POL_KMEM_CACHE else T.SITE_PAMT_TOPUP
            pfn = host.alloc_4k(S, ctx, vm, S.pool_owner[pool], site)
            if pfn < 0:
                break
            # a kmem_cache constructor cannot fail: a failed get is only an error event
            D.pamt_get(V, S, ctx, vm, pfn, -1, 0)
        host.set_owner(S, pfn, 1, S.pool_owner[pool])
        S.pool_pfns[pool, inst, n] = pfn
        n += 1
    pools.filled(S, ctx, vm, pool, inst, before, n)


@kernel
def _topup(V, S, ctx, vm, vcpu):
    """``topup_external_cache`` before ``mmu_lock``: S-EPT pages and Dynamic PAMT pages."""
    if vcpu >= 0:
        pool, inst = T.POOL_EXTERNAL_SPT, _gv(S, vm, vcpu)
    else:
        pool, inst = T.POOL_EXTERNAL_SPLIT, vm
    if _sept_pages_hold_pamt(V):
        _fill_sept_with_pamt(V, S, ctx, vm, pool, inst)
    else:
        pools.topup(S, ctx, vm, pool, inst, -1)
    if M.dpamt(V):
        pp = _pair_source_pool(V, S, vm, vcpu)
        if pp >= 0:
            pools.topup(S, ctx, vm, pp, _pair_source_inst(S, vm, vcpu), -1)


@kernel
def _alloc_external_spt(V, S, ctx, vm, vcpu, level, site):
    if vcpu >= 0:
        return pools.take(S, ctx, vm, T.POOL_EXTERNAL_SPT, _gv(S, vm, vcpu), C.OWN_FW_PT, site)
    return pools.take(S, ctx, vm, T.POOL_EXTERNAL_SPLIT, vm, C.OWN_FW_PT, site)


@kernel(cold=True)
def _drop_sept_page(V, S, ctx, vm, pfn):
    """An S-EPT page KVM no longer needs: back to the kmem cache with its PAMT (kmem-cache), or
    its PAMT dropped (topup), then freed."""
    if _sept_pages_hold_pamt(V) and _policy(V) == T.POL_KMEM_CACHE:
        k = S.pool_count[T.POOL_KMEM, 0]
        if k < S.pool_cap[T.POOL_KMEM]:
            S.pool_pfns[T.POOL_KMEM, 0, k] = pfn
            S.pool_count[T.POOL_KMEM, 0] = k + 1
            host.set_owner(S, pfn, 1, C.OWN_VENDOR_POOL)
            if k + 1 > S.pool_peak[T.POOL_KMEM]:
                S.pool_peak[T.POOL_KMEM] = k + 1
            return
    if _sept_pages_hold_pamt(V):
        D.pamt_put(V, S, ctx, vm, pfn)
    host.free_frames_one(S, ctx, vm, pfn)


@kernel
def _release_external_spt(V, S, ctx, vm, pt_pfn):
    _drop_sept_page(V, S, ctx, vm, pt_pfn)


# --- mapping --------------------------------------------------------------------------------------

@kernel
def _phys_prepare(V, S, ctx, vm, vcpu, pfn, level):
    """The RFC's hook (vcpu-pool): PAMT for a page about to be handed to the module, drawn from
    the vCPU's pool, or allocated in place when the path has no vCPU."""
    if _policy(V) != T.POL_VCPU_POOL or not M.dpamt(V):
        return 0
    if level != C.LVL_4K and S.frame_owner[pfn] != C.OWN_FW_PT:
        return 0
    return D.pamt_get(V, S, ctx, vm, pfn, _pair_source_pool(V, S, vm, vcpu),
                      _pair_source_inst(S, vm, vcpu))


@kernel
def _phys_cleanup(V, S, ctx, vm, vcpu, pfn, level):
    if _policy(V) != T.POL_VCPU_POOL or not M.dpamt(V):
        return
    if level != C.LVL_4K and S.frame_owner[pfn] != C.OWN_FW_PT:
        return
    D.pamt_put(V, S, ctx, vm, pfn)


@kernel
def _pamt_for(V, S, ctx, vm, vcpu, pfn):
    """The running-vcpu-style get for a page about to go to the module (0 if not needed)."""
    return D.pamt_get(V, S, ctx, vm, pfn, _pair_source_pool(V, S, vm, vcpu),
                      _pair_source_inst(S, vm, vcpu))


@kernel(cold=True)
def _link_external_spt(V, S, ctx, vm, vcpu, gfn, level, pt_pfn):
    """``tdx_sept_link_private_spt``: TDH.MEM.SEPT.ADD of the S-EPT page for a new table."""
    own_get = M.dpamt(V) and not _sept_pages_hold_pamt(V) and (
        _policy(V) == T.POL_RUNNING_VCPU or _policy(V) == T.POL_GMEM_PREPARE)
    if own_get:
        if _pamt_for(V, S, ctx, vm, vcpu, pt_pfn) != 0:
            return 1
    tdr = _tdr(V, vm)
    status = M.tdh_mem_sept_add(V, S, ctx, gfn, level + 1, tdr, pt_pfn)
    if status == A.MISSING_PAMT_PAGE_PAIR and _policy(V) == T.POL_LAZY:
        if D.lazy_add(V, S, ctx, vm, pt_pfn) == 0:
            status = M.tdh_mem_sept_add(V, S, ctx, gfn, level + 1, tdr, pt_pfn)
    if status != A.SUCCESS:
        if own_get:
            D.pamt_put(V, S, ctx, vm, pt_pfn)
        return 1
    return 0


@kernel
def _set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn):
    """``tdx_sept_set_private_spte``: PAGE.ADD during the build, PAGE.AUG afterwards."""
    four_k = level == C.LVL_4K
    own_get = M.dpamt(V) and four_k and _get_at_map(V)
    if own_get:
        if _pamt_for(V, S, ctx, vm, vcpu, pfn) != 0:
            return 1
    tdr = _tdr(V, vm)
    build = V.td_state[vm] == T.TD_INITIALIZED
    call = A.FW_PAGE_ADD if build else A.FW_PAGE_AUG
    status = A.SUCCESS
    for _ in range(2):
        if build:
            status = M.tdh_mem_page_add(V, S, ctx, gfn, tdr, pfn, -1)
        else:
            status = M.tdh_mem_page_aug(V, S, ctx, gfn, level, tdr, pfn)
        if status == A.MISSING_PAMT_PAGE_PAIR and _policy(V) == T.POL_LAZY:
            if D.lazy_add(V, S, ctx, vm, pfn) == 0:
                continue
        break
    if status != A.SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, call, status)
        if own_get:
            D.pamt_put(V, S, ctx, vm, pfn)
        return 1
    return 0


@kernel
def _build_add(V, S, ctx, vm, gfn, pfn):
    """Measure the added page: TDH.MR.EXTEND for each 256-byte chunk."""
    tdr = _tdr(V, vm)
    for _ in range(16):
        M.tdh_mr_extend(V, S, ctx, gfn, tdr)
    return 0


@kernel
def _after_remove_4k(V, S, ctx, vm, pfn, hint):
    """The data page's PAMT after a successful 4K PAGE.REMOVE (or a PROMOTE-freed page)."""
    if not M.dpamt(V):
        return
    D.removal_hint(V, S, ctx, vm, pfn, hint)
    if _get_at_map(V):
        D.pamt_put(V, S, ctx, vm, pfn)


@kernel(cold=True)
def _remove_external_spte(V, S, ctx, vm, gfn, level, pfn):
    """``tdx_sept_remove_private_spte``: BLOCK, TRACK and kick, PAGE.REMOVE, WBINVD and clear."""
    tdr = _tdr(V, vm)
    status = M.tdh_mem_range_block(V, S, ctx, gfn, level, tdr)
    if status < 0:
        return _fail(S, ctx, vm, A.FW_RANGE_BLOCK, status)
    tdx_track(V, S, ctx, vm)
    status = M.tdh_mem_page_remove(V, S, ctx, gfn, level, tdr)
    if status != A.SUCCESS:
        return _fail(S, ctx, vm, A.FW_PAGE_REMOVE, status)
    hint = (V.out[0] >> 62) & 1
    n = 1 if level == C.LVL_4K else P2M
    for i in range(n):
        M.tdh_phymem_page_wbinvd(V, S, ctx, pfn + i)
    clock.charge(S, ctx, S.cost[st.COST_ZERO_4K] * n)
    if level == C.LVL_4K:
        _after_remove_4k(V, S, ctx, vm, pfn, hint)
    return 0


@kernel(cold=True)
def _free_external_spt(V, S, ctx, vm, gfn, level, pt_pfn):
    """KVM frees a mirror table: reclaim the S-EPT page behind it (after the HKID is gone) or,
    while the TD lives, unlink it with BLOCK, TRACK, SEPT.REMOVE; then drop the page."""
    g = S.vm_gfn_base[vm] + gfn
    if level == C.LVL_4K:
        page = V.spt4k[g >> 9]
    elif level == C.LVL_2M:
        page = V.spt2m[g >> 18]
    else:
        page = V.spt1g[vm, gfn >> 27]
    if page < 0:
        return
    if V.td_state[vm] == T.TD_TEARDOWN:
        status = M.tdh_phymem_page_reclaim(V, S, ctx, page)
        if status != A.SUCCESS:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_RECLAIM, status)
            host.set_owner(S, page, 1, C.OWN_LEAKED)
            return
        D.removal_hint(V, S, ctx, vm, page, (V.out[0] >> 62) & 1)
        M.tdh_phymem_page_wbinvd(V, S, ctx, page)
    else:
        tdr = _tdr(V, vm)
        M.tdh_mem_range_block(V, S, ctx, gfn, level + 1, tdr)
        tdx_track(V, S, ctx, vm)
        status = M.tdh_mem_sept_remove(V, S, ctx, gfn, level + 1, tdr)
        if status != A.SUCCESS:
            clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_SEPT_REMOVE, status)
            return
        D.removal_hint(V, S, ctx, vm, page, (V.out[0] >> 62) & 1)
    if level == C.LVL_4K:
        V.spt4k[g >> 9] = -1
    elif level == C.LVL_2M:
        V.spt2m[g >> 18] = -1
    else:
        V.spt1g[vm, gfn >> 27] = -1
    _drop_page_after_module(V, S, ctx, vm, page)


@kernel(cold=True)
def _drop_page_after_module(V, S, ctx, vm, page):
    """An S-EPT page the module gave back: its PAMT per policy, then the page itself."""
    if _sept_pages_hold_pamt(V):
        _drop_sept_page(V, S, ctx, vm, page)
        return
    p = _policy(V)
    if M.dpamt(V) and p != T.POL_LAZY:
        D.pamt_put(V, S, ctx, vm, page)
    host.free_frames_one(S, ctx, vm, page)


# --- splits and merges ----------------------------------------------------------------------------

@kernel(cold=True)
def _split_external_spte(V, S, ctx, vm, vcpu, gfn, level, pt_pfn, cause):
    """``tdx_sept_split_private_spte``: BLOCK, TRACK and kick, DEMOTE with the new S-EPT page
    and, under Dynamic PAMT, a pair for the data range (§4.2, §4.3)."""
    if level != C.LVL_2M:
        return 1
    dp = M.dpamt(V)
    p = _policy(V)
    pool = _pair_source_pool(V, S, vm, vcpu)
    inst = _pair_source_inst(S, vm, vcpu)
    own_get = dp and (p == T.POL_RUNNING_VCPU or p == T.POL_GMEM_PREPARE)
    if own_get and D.pamt_get(V, S, ctx, vm, pt_pfn, pool, inst) != 0:
        return 1
    if dp and p == T.POL_LAZY and M.hpa_free_4k(V, pt_pfn) == A.MISSING_PAMT_PAGE_PAIR:
        D.lazy_add(V, S, ctx, vm, pt_pfn)
    p0 = -1
    p1 = -1
    if dp:
        p0 = D.take_page(V, S, ctx, vm, pool, inst, T.SITE_PAIR)
        p1 = D.take_page(V, S, ctx, vm, pool, inst, T.SITE_PAIR)
    tdr = _tdr(V, vm)
    status = M.tdh_mem_range_block(V, S, ctx, gfn, level, tdr)
    if status >= 0:
        tdx_track(V, S, ctx, vm)
        status = M.tdh_mem_page_demote(V, S, ctx, gfn, level, tdr, pt_pfn, p0, p1)
    if status != A.SUCCESS:
        clock.error(S, ctx, vm, C.ERR_FW_FAILURE, A.FW_DEMOTE, status)
        M.tdh_mem_range_unblock(V, S, ctx, gfn, level, tdr)
        if dp:
            D.give_back(V, S, ctx, vm, p0, pool, inst)
            D.give_back(V, S, ctx, vm, p1, pool, inst)
        if own_get:
            D.pamt_put(V, S, ctx, vm, pt_pfn)
        return 1
    if dp:
        # the module now counts 512 pages in the data range: so does the kernel (HP3 23/24)
        r = S.g_pfn[S.vm_gfn_base[vm] + gfn] >> 9
        V.refcount[r] = P2M
        S.cnt[CNT + T.CN_PAIRS_ADDED] += 1
    return 0


@kernel(cold=True)
def _merge_external_spte(V, S, ctx, vm, gfn, level, cause):
    """Off unless ``promote``: KVM disallows merging on mirror roots (§4.1). With it, BLOCK the
    non-leaf entry, TRACK and kick, then TDH.MEM.PAGE.PROMOTE (§2.5)."""
    if V.opt[T.OPT_PROMOTE] == 0 or level != C.LVL_2M:
        return 1
    tdr = _tdr(V, vm)
    status = M.tdh_mem_range_block(V, S, ctx, gfn, level, tdr)
    if status < 0:
        return 1
    tdx_track(V, S, ctx, vm)
    status = M.tdh_mem_page_promote(V, S, ctx, gfn, level, tdr)
    if status != A.SUCCESS:
        M.tdh_mem_range_unblock(V, S, ctx, gfn, level, tdr)
        return 1
    page = V.out[0] >> 12
    if M.dpamt(V):
        r = S.g_pfn[S.vm_gfn_base[vm] + gfn] >> 9
        V.refcount[r] = 0
        S.cnt[CNT + T.CN_PAIRS_REMOVED] += 1
        D.free_pair(V, S, ctx, vm, V.out[6], V.out[7])
    _drop_page_after_module(V, S, ctx, vm, page)
    return 0


# --- guest_memfd and the guest --------------------------------------------------------------------

@kernel(cold=True)
def _gmem_prepare(V, S, ctx, vm, gfn, pfn, order):
    """gmem-prepare: every page of a new folio gets its PAMT now, SEV style."""
    if _policy(V) != T.POL_GMEM_PREPARE or not M.dpamt(V):
        return 0
    n = 1 << order
    for i in range(n):
        if D.pamt_get(V, S, ctx, vm, pfn + i, -1, 0) != 0:
            return 1
    return 0


@kernel(cold=True)
def _gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages):
    if _policy(V) != T.POL_GMEM_PREPARE or not M.dpamt(V):
        return
    for i in range(npages):
        D.pamt_put(V, S, ctx, vm, pfn + i)


@kernel
def _gmem_max_mapping_level(V, S, vm, gfn, pfn):
    """2M at most (KVM's TDX limit), 4K with ``huge_pages`` off, and 4K where a page pair is
    installed for the range already (a 2M AUG would fail: the sizes must match, §1.2)."""
    if V.opt[T.OPT_HUGE] == 0:
        return C.LVL_4K
    if M.dpamt(V) and V.pamt2m_pt[pfn >> 9] == A.PT_PAMT:
        S.cnt[CNT + T.CN_HUGE_DENIED] += 1
        return C.LVL_4K
    return C.LVL_2M


@kernel
def _guest_accept(V, S, ctx, vm, vcpu, gfn, level):
    """TDG.MEM.PAGE.ACCEPT, and KVM's reaction to the exit it may cause: an accept below a
    mapping (or before one) makes KVM set the one-way GUEST_INHIBIT above the accept level
    (``tdx_honor_guest_accept_level``, §4.2 item 1)."""
    _ensure_running(V, S, ctx, vm)
    status = M.tdg_mem_page_accept(V, S, ctx, vm, gfn, level)
    if status == A.SUCCESS:
        return C.ACCEPT_OK
    if status == A.PAGE_ALREADY_ACCEPTED:
        return C.ACCEPT_ALREADY
    if status == A.PAGE_SIZE_MISMATCH:
        return C.ACCEPT_SIZE_MISMATCH
    if status == A.EXIT_EPT_VIOLATION:
        g = S.vm_gfn_base[vm] + gfn
        if level == C.LVL_4K and (S.r2_flags[g >> 9] & st.R2_NO_HUGE) == 0:
            S.r2_flags[g >> 9] |= st.R2_NO_HUGE
            S.cnt[CNT + T.CN_INHIBITS] += 1
        if int(S.g_map[g]) - 1 > level:
            return C.ACCEPT_EXIT_SPLIT
        return C.ACCEPT_NOT_MAPPED
    return 100 + M.status_index(V, status)


# --- teardown -------------------------------------------------------------------------------------

@kernel(cold=True)
def _drain_sept_cache(V, S, ctx, vm, pool, inst):
    """Free a cache of S-EPT pages that carry their PAMT (kmem-cache, topup) page by page, so
    each page's PAMT goes where the policy sends it (emu's generic drain would just free it)."""
    if not _sept_pages_hold_pamt(V):
        return
    for i in range(S.pool_count[pool, inst]):
        _drop_sept_page(V, S, ctx, vm, S.pool_pfns[pool, inst, i])
        S.pool_pfns[pool, inst, i] = -1
    S.pool_count[pool, inst] = 0


@kernel(cold=True)
def _vm_pre_destroy(V, S, ctx, vm):
    """``tdx_mmu_release_hkid``: flush every vCPU, VPFLUSHDONE, cache write-back, free the HKID.
    The per-VM S-EPT split cache is emptied here too (the core drains per-VM caches before the
    vendor's ``vm_destroy``)."""
    _drain_sept_cache(V, S, ctx, vm, T.POOL_EXTERNAL_SPLIT, vm)
    tdr = _tdr(V, vm)
    if tdr < 0:
        return
    vb = S.vm_vcpu_base[vm]
    for i in range(S.vm_vcpus[vm]):
        if V.vp_tdvpr[vb + i] >= 0:
            M.tdh_vp_flush(V, S, ctx, V.vp_tdvpr[vb + i])
    M.tdh_mng_vpflushdone(V, S, ctx, tdr)
    M.tdh_phymem_cache_wb(V, S, ctx)
    status = M.tdh_mng_key_freeid(V, S, ctx, tdr)
    if status != A.SUCCESS:
        _fail(S, ctx, vm, A.FW_KEY_FREEID, status)


@kernel(cold=True)
def _vcpu_destroy(V, S, ctx, vm, vcpu):
    """Reclaim the vCPU's TDCX pages and its TDVPR; empty its S-EPT cache."""
    gv = _gv(S, vm, vcpu)
    _drain_sept_cache(V, S, ctx, vm, T.POOL_EXTERNAL_SPT, gv)
    for i in range(V.vp_ntdcx[gv]):
        control_page_free(V, S, ctx, vm, V.vp_tdcx[gv, i])
        V.vp_tdcx[gv, i] = -1
    if V.vp_tdvpr[gv] >= 0:
        control_page_free(V, S, ctx, vm, V.vp_tdvpr[gv])
    V.vp_tdvpr[gv] = -1
    V.vp_ntdcx[gv] = 0
    V.vp_state[gv] = T.VP_NONE
    V.vp_epoch[gv] = -1


@kernel(cold=True)
def _vm_destroy(V, S, ctx, vm):
    """Reclaim the TDCS pages, then the TDR (``tdx_reclaim_td_control_pages``), and forget the
    TD's Secure EPT so the slot can hold a new TD."""
    tdr = _tdr(V, vm)
    if tdr < 0:
        return
    for i in range(V.td_ntdcs[vm]):
        control_page_free(V, S, ctx, vm, V.td_tdcs[vm, i])
        V.td_tdcs[vm, i] = -1
    control_page_free(V, S, ctx, vm, tdr)
    base = S.vm_gfn_base[vm]
    n = S.vm_pages[vm]
    for i in range(n):
        V.sept4k[base + i] = A.SEPT_FREE
    for r in range(base >> 9, (base + n + P2M - 1) >> 9):
        V.sept2m[r] = A.SEPT_FREE
        V.spt4k[r] = -1
    for r in range(base >> 18, (base + n + (1 << 18) - 1) >> 18):
        V.sept1g[r] = A.SEPT_FREE
        V.spt2m[r] = -1
    for q in range(V.spt1g.shape[1]):
        V.spt1g[vm, q] = -1
    V.td_tdr[vm] = -1
    V.td_state[vm] = T.TD_NONE


# --- --check --------------------------------------------------------------------------------------

@kernel(cold=True)
def _check(V, S):
    """The vendor's invariants: the kernel's refcount against the module's page count in every
    region (equal under policies that hold PAMT only for pages the module uses, at least as
    large otherwise); a pair installed exactly where the refcount is positive; and PAMT page
    types matching the frame owners."""
    bad = 0
    dp = M.dpamt(V)
    p = _policy(V)
    exact = p == T.POL_RUNNING_VCPU or p == T.POL_VCPU_POOL
    if dp and p != T.POL_LAZY:
        for r in range(V.refcount.shape[0]):
            rc = V.refcount[r]
            installed = V.pamt2m_pt[r] == A.PT_PAMT
            if installed != (rc > 0):
                bad += 1
            elif installed:
                if exact and rc != V.pamt2m_count[r]:
                    bad += 1
                elif rc < V.pamt2m_count[r]:
                    bad += 1
    for pfn in range(S.frame_owner.shape[0]):
        e = V.pamt4k[pfn]
        pt = e & T.PT_MASK
        o = S.frame_owner[pfn]
        if e & T.BITMAP_BIT:
            if o != C.OWN_FW_META and o != C.OWN_LEAKED:
                bad += 1
        elif pt == A.PT_EPT:
            if o != C.OWN_FW_PT and o != C.OWN_LEAKED:
                bad += 1
        elif pt == A.PT_TDR or pt == A.PT_TDCX or pt == A.PT_TDVPR:
            if o != C.OWN_FW_CONTROL and o != C.OWN_LEAKED:
                bad += 1
        elif pt == A.PT_REG:
            if o != C.OWN_GUEST_PRIVATE:
                bad += 1
    return bad


# --- the points -----------------------------------------------------------------------------------
# The vendor points. Most are thin entries for the kernels above: a point is compiled into
# every caller, and the cold bodies are too large to copy into each; where a cheap test decides
# that nothing is to be done (a policy that does not use the point), it is made here, so the
# common case costs no call.

def host_init(V, S, ctx):
    return _host_init(V, S, ctx)


def vm_init(V, S, ctx, vm):
    return _vm_init(V, S, ctx, vm)


def vcpu_init(V, S, ctx, vm, vcpu):
    return _vcpu_init(V, S, ctx, vm, vcpu)


def remove_external_spte(V, S, ctx, vm, gfn, level, pfn):
    return _remove_external_spte(V, S, ctx, vm, gfn, level, pfn)


def free_external_spt(V, S, ctx, vm, gfn, level, pt_pfn):
    return _free_external_spt(V, S, ctx, vm, gfn, level, pt_pfn)


def split_external_spte(V, S, ctx, vm, vcpu, gfn, level, pt_pfn, cause):
    return _split_external_spte(V, S, ctx, vm, vcpu, gfn, level, pt_pfn, cause)


def merge_external_spte(V, S, ctx, vm, gfn, level, cause):
    return _merge_external_spte(V, S, ctx, vm, gfn, level, cause)


def gmem_prepare(V, S, ctx, vm, gfn, pfn, order):
    if _policy(V) != T.POL_GMEM_PREPARE or not M.dpamt(V):
        return 0
    return _gmem_prepare(V, S, ctx, vm, gfn, pfn, order)


def gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages):
    if _policy(V) != T.POL_GMEM_PREPARE or not M.dpamt(V):
        return
    _gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages)


def vm_pre_destroy(V, S, ctx, vm):
    return _vm_pre_destroy(V, S, ctx, vm)


def vcpu_destroy(V, S, ctx, vm, vcpu):
    return _vcpu_destroy(V, S, ctx, vm, vcpu)


def vm_destroy(V, S, ctx, vm):
    return _vm_destroy(V, S, ctx, vm)


def check(V, S):
    return _check(V, S)


def set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn):
    return _set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn)


def link_external_spt(V, S, ctx, vm, vcpu, gfn, level, pt_pfn):
    return _link_external_spt(V, S, ctx, vm, vcpu, gfn, level, pt_pfn)


def topup(V, S, ctx, vm, vcpu):
    return _topup(V, S, ctx, vm, vcpu)


def alloc_external_spt(V, S, ctx, vm, vcpu, level, site):
    return _alloc_external_spt(V, S, ctx, vm, vcpu, level, site)


def release_external_spt(V, S, ctx, vm, pt_pfn):
    return _release_external_spt(V, S, ctx, vm, pt_pfn)


def phys_prepare(V, S, ctx, vm, vcpu, pfn, level):
    return _phys_prepare(V, S, ctx, vm, vcpu, pfn, level)


def phys_cleanup(V, S, ctx, vm, vcpu, pfn, level):
    return _phys_cleanup(V, S, ctx, vm, vcpu, pfn, level)


def gmem_max_mapping_level(V, S, vm, gfn, pfn):
    return _gmem_max_mapping_level(V, S, vm, gfn, pfn)


def guest_accept(V, S, ctx, vm, vcpu, gfn, level):
    return _guest_accept(V, S, ctx, vm, vcpu, gfn, level)


def vcpu_exit(V, S, ctx, vm, vcpu):
    return _vcpu_exit(V, S, ctx, vm, vcpu)


def vcpu_enter(V, S, ctx, vm, vcpu):
    return _vcpu_enter(V, S, ctx, vm, vcpu)


def build_add(V, S, ctx, vm, gfn, pfn):
    return _build_add(V, S, ctx, vm, gfn, pfn)
