"""The TDX vendor's arrays: the module's PAMT and Secure EPT, its TDs and vCPUs, and the host
kernel's Dynamic PAMT refcounts; plus the ids of everything the vendor declares.

Layout and sizes (a 1 TiB host, 1 TiB of guests): one uint16 per host 4K frame for its PAMT_4K
entry (page type in bits 0-3, the Dynamic PAMT bitmap bit in bit 4, the owning TD in bits 5-15:
512 MiB), one byte per guest 4K page for its S-EPT entry state (256 MiB), and small per-2M arrays.

Modelling choices (``reference/tdx.md`` where it gives the rule):

* PAMT entries are kept for every frame even under Dynamic PAMT; a 4K entry *exists* only while
  its 2M entry is ``PT_PAMT`` (a page pair is installed), which is what the module's walk checks.
* The 1G level of PAMT and of the S-EPT never holds leaves: KVM maps TDX private memory at 4K
  and 2M only (§4.1, open question 7). The module's 1G-level bookkeeping is therefore not kept.
* The TLB epoch a BLOCK records goes into the PAMT entry of the blocked page (§2.4). For 2M
  leaves that is the per-2M entry; for 4K pages it is kept per host 2M region (the newest epoch
  blocked in the region), so two 4K pages of one region blocked in different epochs are judged
  by the later one, which can only make a tracking check stricter. KVM blocks, tracks and
  removes one page at a time, so it never sees the difference.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from emu.model import consts as C
from emu.model.layout import PAGES_1G, PAGES_2M

from emu_tdx import abi

# --- PAMT_4K entry bits ---------------------------------------------------------------------------
PT_MASK = 0xF
BITMAP_BIT = 0x10          # the page is in use as a Dynamic PAMT page (PAMT_PAGE_BITMAP)
OWNER_SHIFT = 5            # owning TD slot + 1 (0: none)
MAX_TDS = (1 << (16 - OWNER_SHIFT)) - 1

# --- TD lifecycle (td_state) ----------------------------------------------------------------------
TD_NONE = 0
TD_CREATED = 1             # TDH.MNG.CREATE done
TD_KEYED = 2               # TDH.MNG.KEY.CONFIG done
TD_INITIALIZED = 3         # TDH.MNG.INIT done: build-time PAGE.ADD allowed
TD_RUNNABLE = 4            # TDH.MR.FINALIZE done: vCPUs run, TLB tracking is required
TD_TEARDOWN = 5            # the HKID was freed: only reclaim is left

# --- vCPU lifecycle (vp_state) --------------------------------------------------------------------
VP_NONE = 0
VP_CREATED = 1
VP_READY = 2               # TDH.VP.INIT done
VP_FLUSHED = 3             # TDH.VP.FLUSH done (teardown)

# --- options as runtime data (V.opt) --------------------------------------------------------------
OPT_DPAMT = 0              # 1: Dynamic PAMT, 0: static PAMT
OPT_POLICY = 1             # one of POLICIES' index
OPT_HUGE = 2               # 1: private memory may be mapped at 2M (tdx_huge_page)
OPT_PROMOTE = 3            # 1: merge with TDH.MEM.PAGE.PROMOTE (off in the kernel)
OPT_NTDCS = 4              # TDCS pages per TD
OPT_NTDCX = 5              # TDCX pages per vCPU (besides the TDVPR)
N_OPT = 8

#: the allocation policies (the vendor option ``policy``); see emu_tdx.policies for each
POLICIES = ("running-vcpu", "vcpu-pool", "kmem-cache", "gmem-prepare", "topup", "lazy")
(POL_RUNNING_VCPU, POL_VCPU_POOL, POL_KMEM_CACHE, POL_GMEM_PREPARE, POL_TOPUP,
 POL_LAZY) = range(len(POLICIES))

# --- gauges of V.stat ----------------------------------------------------------------------------
ST_PAIRS = 0               # page pairs installed now
ST_PAIRS_PEAK = 1
ST_STATIC_PAMT_PAGES = 2   # frames reserved for PAMT at boot (static part)
ST_REFCOUNT_PAGES = 3      # frames of the kernel's refcount array (Dynamic PAMT)
ST_TDMRS = 4
N_ST = 8

# --- vendor resources, in declaration order (their ids are consts.CORE_* + index) ---------------
LOCK_NAMES = ("pamt_lock",)
LOCK_PAMT = C.CORE_LOCKS + 0

POOL_NAMES = ("mmu_external_spt_cache", "external_split_cache", "pamt_page_cache",
              "pamt_vm_cache", "sept_kmem_cache")
POOL_EXTERNAL_SPT = C.CORE_POOLS + 0   # per vCPU: S-EPT pages for the fault path
POOL_EXTERNAL_SPLIT = C.CORE_POOLS + 1  # per VM: S-EPT pages for splits without a vCPU
POOL_PAMT_VCPU = C.CORE_POOLS + 2      # per vCPU: Dynamic PAMT pages (pairs) for the fault path
POOL_PAMT_VM = C.CORE_POOLS + 3        # per VM: Dynamic PAMT pages for splits without a vCPU
POOL_KMEM = C.CORE_POOLS + 4           # global: the kmem-cache policy's S-EPT page cache

SITE_NAMES = ("tdx_alloc_control_page", "tdx_pamt_get:pair", "tdx_topup_pamt_cache",
              "sept_kmem_cache:ctor", "tdx_lazy_pamt:pair")
SITE_CONTROL = C.CORE_SITES + 0
SITE_PAIR = C.CORE_SITES + 1
SITE_PAMT_TOPUP = C.CORE_SITES + 2
SITE_KMEM_CTOR = C.CORE_SITES + 3
SITE_LAZY_PAIR = C.CORE_SITES + 4

COUNTER_NAMES = (
    "pamt_gets", "pamt_gets_fast", "pamt_puts", "pamt_puts_fast", "pamt_pairs_added",
    "pamt_pairs_removed", "pamt_add_raced", "guest_inhibits", "tdx_tracks", "track_kicks",
    "busy_retries", "huge_denied_by_pair", "lazy_pair_faults", "removal_hints",
    "pairs_leaked",
)
(CN_GETS, CN_GETS_FAST, CN_PUTS, CN_PUTS_FAST, CN_PAIRS_ADDED, CN_PAIRS_REMOVED,
 CN_ADD_RACED, CN_INHIBITS, CN_TRACKS, CN_TRACK_KICKS, CN_BUSY_RETRIES, CN_HUGE_DENIED,
 CN_LAZY_FAULTS, CN_HINTS, CN_PAIRS_LEAKED) = range(len(COUNTER_NAMES))
N_CNT_CORE = 32   # emu.model.state.N_CNT: vendor counter k lives at S.cnt[N_CNT + k]

POINT_NAMES = ("tdx:seamcall", "tdx:pamt_get", "tdx:pamt_put", "tdx:accept",
               "tdx:pamt_add", "tdx:pamt_remove")
POINT_SEAMCALL = C.CORE_POINTS + 0
POINT_PAMT_GET = C.CORE_POINTS + 1
POINT_PAMT_PUT = C.CORE_POINTS + 2
POINT_ACCEPT = C.CORE_POINTS + 3
POINT_PAMT_ADD = C.CORE_POINTS + 4
POINT_PAMT_REMOVE = C.CORE_POINTS + 5

FIELDS = (
    # module: PAMT
    "pamt4k", "pamt2m_pt", "pamt2m_owner", "pamt2m_count", "pamt2m_pair", "pamt2m_bepoch",
    "pamt4k_bepoch",
    # module: Secure EPT (global gfn space)
    "sept4k", "sept2m", "sept1g", "spt4k", "spt2m", "spt1g",
    # module: TDs and vCPUs
    "td_tdr", "td_tdcs", "td_ntdcs", "td_state", "td_epoch", "td_ref", "td_chld", "td_hkid",
    "vp_tdvpr", "vp_tdcx", "vp_ntdcx", "vp_state", "vp_epoch", "vp_hash",
    # host kernel
    "refcount",
    # calls, options, statistics
    "out", "fail_status", "status_values", "cost_base", "opt", "stat",
)
TdxState = namedtuple("TdxState", FIELDS)

#: the cost entry of a successful 2M TDG.MEM.PAGE.ACCEPT (V.cost_base[abi.N_CALLS])
ACCEPT_2M_COST = "seamcall:TDG.MEM.PAGE.ACCEPT(2M)"

MAX_TDCS = 16
MAX_TDCX = 16


def make_state(layout, options, tables) -> TdxState:
    """Allocate the vendor state for ``layout`` with ``options`` (every frame free, no TD)."""
    if len(layout.slots) > MAX_TDS:
        from emu.errors import EmuError

        raise EmuError(f"vendor 'tdx': at most {MAX_TDS} TD slots, the scenario needs "
                       f"{len(layout.slots)}")
    nf = ((layout.host_pages + PAGES_2M - 1) // PAGES_2M) * PAGES_2M
    nr = nf // PAGES_2M
    ngfn = layout.total_gfns
    nr2 = max(1, ngfn // PAGES_2M)
    nr1 = max(1, ngfn // PAGES_1G)
    nq = max([1] + [(s.memory_pages + (1 << 27) - 1) >> 27 for s in layout.slots])
    nvm = max(1, len(layout.slots))
    nvcpu = max(1, layout.total_vcpus)
    opt = np.zeros(N_OPT, np.int64)
    opt[OPT_DPAMT] = int(options["pamt"] == "dynamic")
    opt[OPT_POLICY] = POLICIES.index(options["policy"])
    opt[OPT_HUGE] = int(options["huge_pages"])
    opt[OPT_PROMOTE] = int(options["promote"])
    opt[OPT_NTDCS] = int(options["tdcs_pages"])
    opt[OPT_NTDCX] = int(options["tdvps_pages"]) - 1
    names = tables.cost_names
    cost_base = np.array([names.index(f"seamcall:{name}") for name in abi.CALL_NAMES]
                         + [names.index(ACCEPT_2M_COST)], np.int64)
    return TdxState(
        pamt4k=np.zeros(nf, np.uint16),
        pamt2m_pt=np.zeros(nr, np.uint8),
        pamt2m_owner=np.zeros(nr, np.int16),
        pamt2m_count=np.zeros(nr, np.int16),
        pamt2m_pair=np.full((nr, 2), -1, np.int32),
        pamt2m_bepoch=np.zeros(nr, np.int64),
        pamt4k_bepoch=np.zeros(nr, np.int64),
        sept4k=np.zeros(ngfn, np.uint8),
        sept2m=np.zeros(nr2, np.uint8),
        sept1g=np.zeros(nr1, np.uint8),
        spt4k=np.full(nr2, -1, np.int32),
        spt2m=np.full(nr1, -1, np.int32),
        spt1g=np.full((max(1, len(layout.slots)), nq), -1, np.int32),
        td_tdr=np.full(nvm, -1, np.int32),
        td_tdcs=np.full((nvm, MAX_TDCS), -1, np.int32),
        td_ntdcs=np.zeros(nvm, np.int32),
        td_state=np.zeros(nvm, np.uint8),
        td_epoch=np.zeros(nvm, np.int64),
        td_ref=np.zeros((nvm, 2), np.int32),
        td_chld=np.zeros(nvm, np.int64),
        td_hkid=np.full(nvm, -1, np.int32),
        vp_tdvpr=np.full(nvcpu, -1, np.int32),
        vp_tdcx=np.full((nvcpu, MAX_TDCX), -1, np.int32),
        vp_ntdcx=np.zeros(nvcpu, np.int32),
        vp_state=np.zeros(nvcpu, np.uint8),
        vp_epoch=np.full(nvcpu, -1, np.int64),
        vp_hash=np.full(max(8, 1 << (2 * nvcpu - 1).bit_length()), -1, np.int32),
        refcount=np.zeros(nr, np.int32),
        out=np.zeros(8, np.int64),
        fail_status=np.zeros((abi.N_CALLS, abi.N_STATUS), np.int64),
        status_values=np.array(abi.STATUS_VALUES, np.int64),
        cost_base=cost_base,
        opt=opt,
        stat=np.zeros(N_ST, np.int64),
    )
