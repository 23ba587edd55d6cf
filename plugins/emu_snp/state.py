"""The SNP vendor's arrays: the RMP, the host's direct map, the guests as the firmware and KVM
see them; plus the ids of everything the vendor declares.

The RMP is kept per host 4K frame as the raw entry's fields (``reference/snp.md`` §1): a byte
of single-bit fields (``abi.F_*``), the 10-bit ASID (uint16), the GPA as a guest frame number
(uint32) and the VMPL 1-3 permissions (uint16): 9 bytes per frame, against the 16 the hardware
uses. A 2M entry is kept as the hardware keeps it: the 2M-aligned entry carries the state
(Page_Size set, ASID, GPA, Validated) and its sub-page count; entries 1..511 are assigned with
ASID 0 ([FW], the layout UNSMASH writes). The sub-page count is kept per 2M region
(``rmp_sub``).

Per guest 2M range KVM's side remembers whether its 2M entry was split (``g_split``): a later 2M
assignment there is the only merge SNP has (R4).

The RMP itself lives in host memory: ``16 bytes x frames + 16 KiB`` ([K-host]
``calc_rmp_sz``), taken at boot as static metadata, its own entries in the Firmware state.

The host's direct map is kept per 2M region (split to 4K or not) and per 1G region (split to 2M
or not): Linux splits it, one way, before the first 4K RMPUPDATE inside a large mapping
([K-host] ``adjust_direct_map``).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from emu.errors import EmuError
from emu.model import consts as C
from emu.model.layout import PAGES_2M

from emu_snp import abi

# --- KVM's view of a VM (vm_state) ------------------------------------------------------------------
VM_NONE = 0
VM_LAUNCHING = 1           # guest context created, launch started, ASID bound: the build runs
VM_RUNNING = 2             # SNP_LAUNCH_FINISH done: the guest runs

# --- the firmware's view of a guest context (g_state) ----------------------------------------------
G_NONE = 0
G_INIT = 1                 # SNP_GCTX_CREATE done
G_LAUNCH = 2               # SNP_LAUNCH_START done
G_RUNNING = 3              # SNP_LAUNCH_FINISH done

# --- options as runtime data (V.opt) ----------------------------------------------------------------
OPT_THP = 0                # 1: gmem=thp (2M guest_memfd folios), 0: gmem=upstream (4K only)
OPT_PSC_MAX = 1            # entries per page-state-change request from the guest
OPT_RESCIND = 2            # 1: the guest rescinds validation before going shared
OPT_CONFLICT_CODE = 3      # the code of a 2M RMPUPDATE over assigned 4K entries (4 or 1)
OPT_SMASH_ON_4K = 4        # 1: a 4K RMPUPDATE inside a 2M entry smashes it (0: FAIL_OVERLAP)
OPT_KEEP_VALIDATED = 5     # 1: reassignment keeps Validated (0: clears it, VeriSMo)
OPT_PSMASH_PERMS = 6       # 1: PSMASH copies the VMPL permissions (0: resets them)
OPT_DIRECT_MAP = 7         # initial direct-map page size: 0 = 1G, 1 = 2M, 2 = 4K
OPT_BUSY_PPM = 8           # chance per RMPUPDATE/PSMASH that another CPU holds the entry
OPT_RECLAIM_FAIL_PPM = 9   # chance that SNP_PAGE_RECLAIM fails (fault injection)
N_OPT = 12

DIRECT_MAP_CHOICES = ("1g", "2m", "4k")
# V.dm2m: how the host's direct map covers a 2M region
DM_LARGE = 0               # by a 2M page (or a 1G page, per V.dm1g)
DM_SPLIT = 1               # by 4K pages
DM_NOT_MAPPED = 2          # not at all (the RMP's e820 reservation)

# --- gauges of V.stat ------------------------------------------------------------------------------
ST_RMP_BYTES = 0           # 16 B per frame + 16 KiB
ST_RMP_PAGES = 1           # frames holding the RMP (static metadata)
ST_DM_PT_PAGES = 2         # page-table pages the direct-map splits took
ST_LEAKED = 3              # pages leaked after a failed reclaim or make-shared
ST_RMP_RESERVED = 4        # frames reserved for the RMP: the table rounded up to 2M regions
ST_2M_NOW = 5              # guest 2M entries now, and at peak
ST_2M_PEAK = 6
ST_4K_NOW = 7              # guest 4K entries now, and at peak
ST_4K_PEAK = 8
N_ST = 12

# --- RMP merge causes (V.merge) ---------------------------------------------------------------------
MERGE_NAMES = ("reassign", "unsmash")
MERGE_REASSIGN = 0         # a guest 2M range whose entry was split is prepared at 2M again
MERGE_UNSMASH = 1          # SNP_PAGE_UNSMASH (firmware; KVM has no caller)

# --- direct-map split causes (V.dm_split[cause, 0 = 2M->4K, 1 = 1G->2M]) ----------------------------
DM_CAUSE_NAMES = ("prepare", "launch", "invalidate", "firmware_page")
DM_PREPARE, DM_LAUNCH, DM_INVALIDATE, DM_FIRMWARE = range(len(DM_CAUSE_NAMES))

# --- RMP fault triggers (probe field, counters) ----------------------------------------------------
TRIGGER_NAMES = ("pvalidate", "npt_smaller")
TRIG_PVALIDATE = 0         # (a) PVALIDATE/RMPADJUST at 4K on a 2M entry: #NPF(RMP|SIZEM)
TRIG_NPT = 1               # (b) an access through an NPT mapping smaller than the 2M entry

# --- vendor resources, in declaration order (their ids are consts.CORE_* + index) ---------------
LOCK_NAMES = ("sev_cmd_mutex",)
LOCK_SEV_CMD = C.CORE_LOCKS + 0

SITE_NAMES = ("snp_alloc_firmware_page", "snp_safe_alloc_page", "set_memory_4k:pt_page",
              "snp_rmptable_init")
SITE_FW_PAGE = C.CORE_SITES + 0
SITE_VMSA = C.CORE_SITES + 1
SITE_DM_PT = C.CORE_SITES + 2
SITE_RMP = C.CORE_SITES + 3

COUNTER_NAMES = (
    "rmp_2m_assigned", "rmp_4k_assigned", "rmp_faults", "rmp_faults_spurious",
    "rmp_psmash_raced", "psc_requests", "psc_entries", "psc_userspace_exits",
    "psc_unvalidated_pages", "pvalidate_rescinds", "overlap_retries", "inuse_retries",
    "pages_leaked", "vmsa_realigned", "launch_gap_pages",
)
(CN_RMP_2M, CN_RMP_4K, CN_RMP_FAULTS, CN_RMP_SPURIOUS, CN_PSMASH_RACED, CN_PSC_REQUESTS,
 CN_PSC_ENTRIES, CN_PSC_USER_EXITS, CN_PSC_UNVALIDATED, CN_RESCINDS, CN_OVERLAP_RETRIES,
 CN_INUSE_RETRIES, CN_LEAKED, CN_VMSA_REALIGNED, CN_LAUNCH_GAP) = range(len(COUNTER_NAMES))

POINT_NAMES = ("snp:rmpupdate", "snp:psmash", "snp:pvalidate", "snp:rmpadjust", "snp:rmpread",
               "snp:fw", "snp:rmp_fault", "snp:psc", "snp:prepare", "snp:invalidate",
               "snp:split", "snp:merge")
(POINT_RMPUPDATE, POINT_PSMASH, POINT_PVALIDATE, POINT_RMPADJUST, POINT_RMPREAD, POINT_FW,
 POINT_RMP_FAULT, POINT_PSC, POINT_PREPARE, POINT_INVALIDATE, POINT_SPLIT,
 POINT_MERGE) = (C.CORE_POINTS + i for i in range(len(POINT_NAMES)))
SPLIT_RMP, SPLIT_DM_2M, SPLIT_DM_1G = 0, 1, 2      # snp:split "what"

# --- costs beyond one per call (V.cost_base[abi.N_CALLS + k]) -------------------------------------
EXTRA_COSTS = ("snp:RMPUPDATE(2M)", "snp:PVALIDATE(2M)", "snp:clflush_4k", "snp:clflush_2m",
               "snp:psc_request", "snp:psc_userspace_exit", "snp:direct_map_split")
(XC_RMPUPDATE_2M, XC_PVALIDATE_2M, XC_CLFLUSH_4K, XC_CLFLUSH_2M, XC_PSC_REQUEST,
 XC_PSC_USER_EXIT, XC_DM_SPLIT) = (abi.N_CALLS + i for i in range(len(EXTRA_COSTS)))

FIELDS = (
    # the RMP, per host frame and per host 2M region
    "rmp_flags", "rmp_asid", "rmp_gpa", "rmp_perm", "rmp_sub",
    # the host's direct map
    "dm2m", "dm1g",
    # guests: KVM's and the firmware's view
    "vm_state", "vm_asid", "vm_gctx", "g_state", "g_asid", "vcpu_vmsa", "g_split",
    # calls, statistics, options
    "out", "fail", "cost_base", "opt", "stat", "split", "merge", "dm_split",
)
SnpState = namedtuple("SnpState", FIELDS)

RMP_ENTRY_BYTES = 16           # one per 4K frame (§1)
RMP_BOOKKEEPING_BYTES = 16384  # the processor's area at RMP_BASE (§1)
PSC_MAX_GHCB = 253             # VMGEXIT_PSC_MAX_COUNT (§4.3)


def rmp_bytes(host_pages: int) -> int:
    """``calc_rmp_sz``: 16 bytes per 4K frame up to the last one, plus the 16 KiB bookkeeping
    area ([K-host], §1)."""
    return host_pages * RMP_ENTRY_BYTES + RMP_BOOKKEEPING_BYTES


def _ppm(name: str, value: float) -> int:
    if not 0.0 <= value <= 1.0:
        raise EmuError(f"vendor 'snp': {name} must be between 0 and 1, got {value}")
    return int(round(value * 1_000_000))


def make_state(layout, options, tables) -> SnpState:
    """Allocate the vendor state for ``layout`` with ``options``: every RMP entry Hypervisor,
    the direct map at its initial page size, no guest."""
    nvm = max(1, len(layout.slots))
    if nvm > abi.MAX_ASID:
        raise EmuError(f"vendor 'snp': at most {abi.MAX_ASID} guests (10-bit ASIDs), the "
                       f"scenario needs {nvm} slots")
    psc = int(options["psc_max_entries"])
    if not 1 <= psc <= PSC_MAX_GHCB:
        raise EmuError(f"vendor 'snp': psc_max_entries must be 1..{PSC_MAX_GHCB} "
                       f"(VMGEXIT_PSC_MAX_COUNT), got {psc}")
    nr = (layout.host_pages + PAGES_2M - 1) // PAGES_2M
    nf = nr * PAGES_2M
    ng = (nr + 511) // 512
    nvcpu = max(1, layout.total_vcpus)
    opt = np.zeros(N_OPT, np.int64)
    opt[OPT_THP] = int(options["gmem"] == "thp")
    opt[OPT_PSC_MAX] = psc
    opt[OPT_RESCIND] = int(options["rescind"])
    opt[OPT_CONFLICT_CODE] = abi.FAIL_OVERLAP if options["conflict_code"] == "overlap" \
        else abi.FAIL_INPUT
    opt[OPT_SMASH_ON_4K] = int(options["update_in_2m"] == "smash")
    opt[OPT_KEEP_VALIDATED] = int(options["reassign_validated"] == "keep")
    opt[OPT_PSMASH_PERMS] = int(options["psmash_perms"] == "keep")
    opt[OPT_DIRECT_MAP] = DIRECT_MAP_CHOICES.index(options["direct_map"])
    opt[OPT_BUSY_PPM] = _ppm("busy", options["busy"])
    opt[OPT_RECLAIM_FAIL_PPM] = _ppm("reclaim_fail", options["reclaim_fail"])
    names = tables.cost_names
    cost_base = np.array([names.index(f"snp:{n}") for n in abi.CALL_NAMES]
                         + [names.index(n) for n in EXTRA_COSTS], np.int64)
    stat = np.zeros(N_ST, np.int64)
    stat[ST_RMP_BYTES] = rmp_bytes(layout.host_pages)
    stat[ST_RMP_PAGES] = (stat[ST_RMP_BYTES] + 4095) // 4096
    # the direct map starts with its largest pages: 1G (gbpages), 2M, or 4K throughout
    dm = opt[OPT_DIRECT_MAP]
    return SnpState(
        rmp_flags=np.zeros(nf, np.uint8),
        rmp_asid=np.zeros(nf, np.uint16),
        rmp_gpa=np.zeros(nf, np.uint32),
        rmp_perm=np.zeros(nf, np.uint16),
        rmp_sub=np.zeros(nr, np.int16),
        dm2m=np.full(nr, DM_SPLIT if dm == 2 else DM_LARGE, np.uint8),
        dm1g=np.full(ng, 1 if dm >= 1 else 0, np.uint8),
        vm_state=np.zeros(nvm, np.uint8),
        vm_asid=np.zeros(nvm, np.int32),
        vm_gctx=np.full(nvm, -1, np.int64),
        g_state=np.zeros(nvm, np.uint8),
        g_asid=np.zeros(nvm, np.int32),
        vcpu_vmsa=np.full(nvcpu, -1, np.int64),
        g_split=np.zeros(max(1, layout.total_gfns // PAGES_2M), np.uint8),
        out=np.zeros(8, np.int64),
        fail=np.zeros((abi.N_CALLS, abi.N_SLOTS), np.int64),
        cost_base=cost_base,
        opt=opt,
        stat=stat,
        split=np.zeros(C.N_CAUSES, np.int64),
        merge=np.zeros(len(MERGE_NAMES), np.int64),
        dm_split=np.zeros((len(DM_CAUSE_NAMES), 2), np.int64),
    )
