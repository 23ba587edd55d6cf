"""The core state: every array the vendor-neutral kernels read and write, as one namedtuple.

A ``namedtuple`` of numpy arrays is the cheapest state container numba offers: it compiles to a
flat struct and kernels index its arrays directly (a structref measured 5x slower and did not
cache). Passing it to a call is not free (numba flattens it into ~480 machine-word arguments),
which is why every kernel is inlined into the driver (:mod:`emu.jit`). Its class is
module-level so the on-disk cache can name its type.

Sizes: one byte per host 4K frame (``frame_owner``), one int32 + two bytes per guest 4K page
(``g_pfn``, ``g_attr``, ``g_map``) and small per-2M/per-1G arrays, so a 1 TiB host with 1 TiB of
guests needs about 1.8 GiB, most of it the guest pfn table.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from emu.model import consts as C
from emu.model.layout import PAGES_1G, PAGES_2M, Layout

# --- scalar slots of ``S.sc`` -----------------------------------------------------------------------
SC_RNG = 0              # xorshift64* state (deterministic per seed)
SC_HUGE_PPM = 1         # chance, in parts per million, that a THP allocation gets a 2M folio
SC_FREE_FRAMES = 2
SC_FREE_REGIONS = 3     # fully free 2M regions
SC_REGION_CURSOR = 4    # where the next search for a free 2M region starts
SC_CUR4K_REGION = 5     # the region 4K allocations are carved from (-1: none)
SC_PARTIAL_TOP = 6      # entries on the partial-region stack
SC_OP_INDEX = 7         # index (in the whole stream) of the operation being run
SC_ERR_RECORDS = 8      # error records stored (<= MAX_ERROR_RECORDS)
SC_RING_N = 9           # probe events in the ring
SC_RING_LOST = 10       # probe events dropped because the ring was full
SC_PRIVATE_MEMORY = 11  # the vendor's guests start private
SC_EXACT_ZAP = 12       # the vendor needs exact zaps (split crossing huge leaves, never zap them)
SC_VENDOR_MAX_LEVEL = 13
SC_NVCPU = 14
SC_NVM = 15
SC_CHECK_FAILED = 16    # first op index at which a kernel noticed a broken invariant (-1 none)
SC_GUEST_OPS = 17
SC_USED_PEAK = 18       # peak of host frames not free
SC_NEXT_GIG = 19        # search cursor for 1G allocations
SC_CUR4K_POS = 20       # where the next free-frame search in the current 4K region starts
SC_EXTERNAL_SPT = 21    # the vendor mirrors page tables into firmware (TDX's Secure EPT)
SC_GMEM_MAX_LEVEL = 22  # the largest folio guest_memfd hands out for private memory (LVL_*)
SC_PROBE_FN = 23        # address of the attached probe program's consumer (0: none attached)
SC_PROBE_RING = 24      # address of ``S.ring``'s data, for the consumer
SC_PROBE_DATA = 25      # address of the probe program's map and output memory
SC_RING_FLUSH_AT = 26   # the driver hands the ring over after an op once it holds this many
SC_STOP = 27            # a probe called exit(): the driver stops after the current operation
N_SC = 32

# --- generic counters of ``S.cnt`` -------------------------------------------------------------------
CNT_FAULTS = 0
CNT_FAULT_PRIVATE = 1
CNT_EXITS = 2           # guest exits to the host (EPT/NPT violations and accept exits)
CNT_TLB_FLUSH = 3
CNT_KICKS = 4
CNT_PT_ALLOC = 5
CNT_PT_FREE = 6
CNT_FOLIO_2M = 7        # 2M folios handed out
CNT_FOLIO_4K = 8
CNT_FOLIO_1G = 9
CNT_FOLIO_SPLIT = 10
CNT_FOLIO_COLLAPSE = 11
CNT_COLLAPSE_REFUSED = 12
CNT_HUGE_DENIED = 13    # THP allocations that fell back to 4K (huge_folio_chance)
CNT_ALLOCS = 14
CNT_FREES = 15
CNT_CONVERT_PAGES = 16
CNT_PUNCH_PAGES = 17
CNT_BUILD_PAGES = 18
CNT_RCU_FREES = 19
CNT_SPLIT_FAILED = 20
CNT_MERGE_REFUSED = 21
CNT_ACCESS_MAPPED = 22  # guest accesses that hit an existing mapping (no exit)
CNT_VM_CREATED = 23
CNT_VM_DESTROYED = 24
CNT_FOLIO_SPLIT_REFUSED = 25
CNT_IMPLICIT_CONVERT = 26
CNT_PT_REPLACED = 27    # page tables replaced by a huge leaf on a fault
N_CNT = 32
CNT_NAMES = (
    "faults", "faults_private", "exits", "tlb_flushes", "vcpu_kicks", "pt_pages_allocated",
    "pt_pages_freed", "folios_2m", "folios_4k", "folios_1g", "folio_splits", "folio_collapses",
    "collapses_refused", "huge_folio_fallbacks", "allocations", "frees", "converted_pages",
    "punched_pages", "build_pages", "rcu_frees", "splits_failed", "merges_refused",
    "accesses_without_exit", "vms_created", "vms_destroyed", "folio_splits_refused",
    "implicit_conversions", "page_tables_replaced",
)

# --- guest page attribute bits of ``S.g_attr`` ------------------------------------------------------
GA_PRIVATE = 1
GA_PREPARED = 2         # guest_memfd prepared this page (vendor gmem_prepare ran)

# --- per-2M-region flag bits of ``S.r2_flags`` -------------------------------------------------------
R2_NO_HUGE = 1          # a vendor forbade huge mappings here (e.g. TDX GUEST_INHIBIT)
R2_COLLAPSED = 2        # khugepaged collapsed this region; the next huge map is a collapse merge

# --- what splits cost, per cause (``S.split_cost[cause, SPLIT_*]``): every counter's change
# while a split ran (emu.model.tdp_mmu.split_leaf, the vendor's split_external_spte included)
SPLIT_FW_CALLS, SPLIT_FW_NS, SPLIT_FW_FAILED, SPLIT_KICKS, SPLIT_TLB_FLUSHES = 0, 1, 2, 3, 4
SPLIT_ATOMIC_ALLOCS, SPLIT_EXTRA_PAGES, SPLIT_NS, SPLIT_FAILED = 5, 6, 7, 8
N_SPLIT_COSTS = 9
SPLIT_COST_NAMES = ("firmware_calls", "firmware_ns", "firmware_failed", "vcpu_kicks",
                    "tlb_flushes", "atomic_allocations", "extra_pages", "ns", "failed")

# --- probe_mask values: how emit treats a point --------------------------------------------------
PROBE_OFF, PROBE_RING, PROBE_COUNT = 0, 1, 2

# --- trace ring columns ----------------------------------------------------------------------------
EV_TIME, EV_POINT, EV_CTX, EV_VM, EV_VCPU = 0, 1, 2, 3, 4
EV_ARGS = 5             # a0..a5 follow
EV_COLS = 11

# --- error record columns --------------------------------------------------------------------------
ER_OP, ER_TIME, ER_KIND, ER_A, ER_B, ER_CTX = range(6)

# --- core cost table (ns); the numbers and their sources are in emu.model.costs --------------------
COST_EXIT = 0
COST_FAULT = 1
COST_SPTE = 2
COST_ALLOC_4K = 3
COST_ALLOC_2M = 4
COST_ZERO_4K = 5
COST_ZERO_2M = 6
COST_FREE = 7
COST_TLB_FLUSH = 8
COST_KICK = 9
COST_LOCK = 10
COST_ACCESS = 11
COST_IOCTL = 12
COST_VM_CREATE = 13
COST_VCPU_CREATE = 14
COST_COPY_4K = 15
COST_RCU_FREE = 16
COST_ATTR_PAGE = 17
CORE_COSTS = 18

FIELDS = (
    # host
    "frame_owner", "region_free", "partial_stack", "in_partial", "gig_free_regions",
    "own_pages", "own_peak",
    # guests (global gfn space)
    "g_pfn", "g_attr", "g_map",
    "r2_folio", "r2_private", "r2_pt", "r2_leaves", "r2_flags",
    "r1_folio", "r1_private", "r1_pd", "r1_entries",
    "q_pdpt",
    # VMs and vCPUs
    "vm_alive", "vm_gfn_base", "vm_pages", "vm_backing", "vm_vcpus", "vm_vcpu_base", "vm_root",
    "vcpu_alive",
    # contexts, clocks, locks
    "ctx_kind", "ctx_clock", "ctx_atomic", "ctx_busy",
    "lock_holds", "lock_pos", "lock_start", "lock_last", "lock_acq", "lock_contended", "lock_wait", "lock_scope",
    # pools
    "pool_count", "pool_pfns", "pool_cap", "pool_min", "pool_scope", "pool_owner",
    "pool_topups", "pool_taken", "pool_empty", "pool_peak",
    # costs, counters, errors, firmware calls, probes
    "cost", "sc", "cnt", "cnt_ops", "cnt_map", "cnt_zap", "mapped", "cnt_split", "cnt_merge",
    "cnt_accept", "split_cost", "err_count", "err_site", "err_rec", "fw_count", "fw_ns", "fw_fail",
    "probe_mask", "probe_hits", "ring",
)

CoreState = namedtuple("CoreState", FIELDS)

#: probe events the ring holds between two drains (the driver drains it after every batch)
RING_CAPACITY = 1 << 16


def n_contexts(nvcpu: int, nvm: int) -> int:
    return nvcpu + 2 * nvm + 2


def ctx_vmm(S, vm):
    """Context id of VM ``vm``'s VMM ioctl thread (usable from Python and jitted code)."""
    return S.sc[SC_NVCPU] + 2 * vm


def make_state(layout: Layout, *, n_locks: int, n_pools: int, n_sites: int, n_counters: int,
               n_fw: int, n_points: int, lock_scopes, lock_sleeps, pool_caps, pool_mins, pool_scopes,
               pool_owners, costs, private_memory: bool, exact_zap: bool,
               external_spt: bool, vendor_max_level: int,
               gmem_max_level: int = C.LVL_1G) -> CoreState:
    """Allocate the core state for ``layout`` (everything free, no VM alive)."""
    nf = layout.host_pages
    nr = (nf + PAGES_2M - 1) // PAGES_2M
    ng = (nr + 511) // 512
    ngfn = layout.total_gfns
    nr2 = ngfn // PAGES_2M
    nr1 = ngfn // PAGES_1G
    # PDPTs (512G each) per VM slot: slots are only 1G aligned, so several share a 512G range
    nq = max([1] + [(s.memory_pages + (1 << 27) - 1) >> 27 for s in layout.slots])
    nvm = max(1, len(layout.slots))
    nvcpu = layout.total_vcpus
    nctx = n_contexts(nvcpu, nvm)
    ninst = max(1, nvcpu, nvm)
    maxcap = max([1, *pool_caps])

    frame_owner = np.zeros(nr * PAGES_2M, np.uint8)
    # frames past the end of host memory (a partial last region) belong to nobody we model
    frame_owner[nf:] = C.OWN_HOST
    region_free = np.full(nr, PAGES_2M, np.int16)
    if nf % PAGES_2M:
        region_free[-1] = nf % PAGES_2M

    ctx_kind = np.zeros(nctx, np.uint8)
    ctx_kind[:nvcpu] = C.CTX_VCPU
    for vm in range(nvm):
        ctx_kind[nvcpu + 2 * vm] = C.CTX_VMM
        ctx_kind[nvcpu + 2 * vm + 1] = C.CTX_NOTIFIER
    ctx_kind[nctx - 2] = C.CTX_RCU
    ctx_kind[nctx - 1] = C.CTX_KHUGEPAGED

    sc = np.zeros(N_SC, np.int64)
    sc[SC_RNG] = (layout.seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & ((1 << 63) - 1) or 1
    sc[SC_HUGE_PPM] = int(round(layout.huge_folio_chance * 1_000_000))
    sc[SC_CUR4K_REGION] = -1
    sc[SC_PRIVATE_MEMORY] = int(private_memory)
    sc[SC_EXACT_ZAP] = int(exact_zap)
    sc[SC_EXTERNAL_SPT] = int(external_spt)
    sc[SC_VENDOR_MAX_LEVEL] = vendor_max_level
    sc[SC_GMEM_MAX_LEVEL] = gmem_max_level
    sc[SC_NVCPU] = nvcpu
    sc[SC_NVM] = nvm
    sc[SC_CHECK_FAILED] = -1
    sc[SC_RING_FLUSH_AT] = RING_CAPACITY + 1     # never, until a probe program asks

    vm_gfn_base = np.zeros(nvm, np.int64)
    vm_pages = np.zeros(nvm, np.int64)
    vm_backing = np.zeros(nvm, np.uint8)
    vm_vcpus = np.zeros(nvm, np.int32)
    vm_vcpu_base = np.zeros(nvm, np.int32)
    for s in layout.slots:
        vm_gfn_base[s.slot] = s.gfn_base
        vm_pages[s.slot] = s.memory_pages
        vm_backing[s.slot] = s.backing
        vm_vcpus[s.slot] = s.vcpus
        vm_vcpu_base[s.slot] = s.vcpu_base

    S = CoreState(
        frame_owner=frame_owner,
        region_free=region_free,
        partial_stack=np.zeros(nr, np.int32),
        in_partial=np.zeros(nr, np.uint8),
        gig_free_regions=np.zeros(ng, np.int32),
        own_pages=np.zeros(C.N_OWNERS, np.int64),
        own_peak=np.zeros(C.N_OWNERS, np.int64),
        g_pfn=np.full(ngfn, -1, np.int32),
        g_attr=np.zeros(ngfn, np.uint8),
        g_map=np.zeros(ngfn, np.uint8),
        r2_folio=np.zeros(nr2, np.uint8),
        r2_private=np.zeros(nr2, np.int16),
        r2_pt=np.full(nr2, -1, np.int32),
        r2_leaves=np.zeros(nr2, np.int16),
        r2_flags=np.zeros(nr2, np.uint8),
        r1_folio=np.zeros(nr1, np.uint8),
        r1_private=np.zeros(nr1, np.int32),
        r1_pd=np.full(nr1, -1, np.int32),
        r1_entries=np.zeros(nr1, np.int16),
        q_pdpt=np.full((nvm, nq), -1, np.int32),
        vm_alive=np.zeros(nvm, np.uint8),
        vm_gfn_base=vm_gfn_base,
        vm_pages=vm_pages,
        vm_backing=vm_backing,
        vm_vcpus=vm_vcpus,
        vm_vcpu_base=vm_vcpu_base,
        vm_root=np.full(nvm, -1, np.int32),
        vcpu_alive=np.zeros(max(1, nvcpu), np.uint8),
        ctx_kind=ctx_kind,
        ctx_clock=np.zeros(nctx, np.int64),
        ctx_atomic=np.zeros(nctx, np.int32),
        ctx_busy=np.zeros(nctx, np.int64),
        lock_holds=np.zeros((n_locks, nvm, 2, HOLDS_KEPT, 2), np.int64),
        lock_pos=np.zeros((n_locks, nvm, 2), np.int64),
        lock_start=np.zeros((n_locks, nvm, 2), np.int64),
        lock_last=np.zeros((n_locks, nvm, 2), np.int64),
        lock_acq=np.zeros((n_locks, nvm), np.int64),
        lock_contended=np.zeros((n_locks, nvm), np.int64),
        lock_wait=np.zeros((n_locks, nvm), np.int64),
        lock_scope=np.array([_SCOPES[s] | (LOCK_SLEEPS if sl else 0)
                             for s, sl in zip(lock_scopes, lock_sleeps)], np.uint8),
        pool_count=np.zeros((n_pools, ninst), np.int32),
        pool_pfns=np.full((n_pools, ninst, maxcap), -1, np.int32),
        pool_cap=np.array(pool_caps, np.int32),
        pool_min=np.array(pool_mins, np.int32),
        pool_scope=np.array([_SCOPES[s] for s in pool_scopes], np.uint8),
        pool_owner=np.array(pool_owners, np.uint8),
        pool_topups=np.zeros(n_pools, np.int64),
        pool_taken=np.zeros(n_pools, np.int64),
        pool_empty=np.zeros(n_pools, np.int64),
        pool_peak=np.zeros(n_pools, np.int64),
        cost=np.array(costs, np.int64),
        sc=sc,
        cnt=np.zeros(N_CNT + n_counters, np.int64),
        cnt_ops=np.zeros(C.N_OPS, np.int64),
        cnt_map=np.zeros(3, np.int64),
        cnt_zap=np.zeros(3, np.int64),
        mapped=np.zeros(3, np.int64),
        cnt_split=np.zeros((C.N_CAUSES, 3), np.int64),
        cnt_merge=np.zeros((C.N_CAUSES, 3), np.int64),
        cnt_accept=np.zeros(8, np.int64),
        split_cost=np.zeros((C.N_CAUSES, N_SPLIT_COSTS), np.int64),
        err_count=np.zeros(C.N_ERRORS, np.int64),
        err_site=np.zeros((C.N_ERRORS, max(1, n_sites)), np.int64),
        err_rec=np.zeros((C.MAX_ERROR_RECORDS, 6), np.int64),
        fw_count=np.zeros(max(1, n_fw), np.int64),
        fw_ns=np.zeros(max(1, n_fw), np.int64),
        fw_fail=np.zeros(max(1, n_fw), np.int64),
        probe_mask=np.zeros(max(1, n_points), np.uint8),
        probe_hits=np.zeros(max(1, n_points), np.int64),
        ring=np.zeros((RING_CAPACITY, EV_COLS), np.int64),
    )
    return S


_SCOPES = {"global": 0, "vm": 1, "vcpu": 2}
LOCK_SLEEPS = 16        # bit of S.lock_scope: a mutex, which does not make its holder atomic
#: hold intervals remembered per lock instance and kind (writer, reader); see emu.model.clock
HOLDS_KEPT = 16
HOLD_WRITER, HOLD_READER = 0, 1
SCOPE_GLOBAL, SCOPE_VM, SCOPE_VCPU = 0, 1, 2
