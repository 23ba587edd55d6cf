"""The TDX module's ABI as emu models it: SEAMCALL leaves, status codes, S-EPT entry states and
PAMT page types, with the numbers the hardware uses.

Sources (tags of ``reference/tdx.md``):

* leaf numbers: §2.1 ([TX seam.h], the kernel's ``tdx.h``); the leaves §2.1 does not list
  (VP.ENTER 0, KEY.CONFIG 8, MR.EXTEND 16, MR.FINALIZE 17, VP.FLUSH 18, MNG.VPFLUSHDONE 19,
  MNG.KEY.FREEID 20, MNG.INIT 21, VP.INIT 22) are the values of KVM's ``tdx_arch.h`` as posted
  on LKML with the KVM TDX series;
* status codes: §2.6 ([M15] ``tdx_error_codes_defs.h``). §2.6 does not give the Dynamic PAMT
  codes (open question 1): ``MISSING_PAMT_PAGE_PAIR``, ``PAMT_PAGE_NOT_EMPTY`` and
  ``NO_PAMT_PAGE_PAIR`` use values chosen here, in the unused 0xC00003xx "page metadata" class,
  and are marked ``chosen`` in :data:`STATUS_CHOSEN`;
* S-EPT states: §2.3 ([M15] ``sept_state_lookup.c``), the public codes;
* page types: §1.1 ([M] ``page_type_t``).

Status values are 64-bit with bit 63 set for errors. Numba integers are signed, so each constant
is stored as the signed int64 with the same bits: an error status is negative, success is 0 and
the warnings (``PAGE_ALREADY_ACCEPTED``, ``GPA_RANGE_ALREADY_BLOCKED``) are positive.
:func:`unsigned` turns one back into the ABI's unsigned form for display.
"""
from __future__ import annotations


def _s64(v: int) -> int:
    return v - (1 << 64) if v >= (1 << 63) else v


def unsigned(status: int) -> int:
    """The ABI's unsigned 64-bit form of a status as stored here."""
    return status & ((1 << 64) - 1)


# --- status codes (§2.6) --------------------------------------------------------------------------
SUCCESS = 0
INTERRUPTED_RESUMABLE = _s64(0x8000000300000000)
INTERRUPTED_RESTARTABLE = _s64(0x8000000400000000)
OPERAND_INVALID = _s64(0xC000010000000000)
OPERAND_ADDR_RANGE_ERROR = _s64(0xC000010100000000)
OPERAND_BUSY = _s64(0x8000020000000000)
PREVIOUS_TLB_EPOCH_BUSY = _s64(0x8000020100000000)
OPERAND_BUSY_HOST_PRIORITY = _s64(0x8000020400000000)
PAGE_METADATA_INCORRECT = _s64(0xC000030000000000)
PAGE_NOT_FREE = _s64(0xC000030300000000)
HPA_RANGE_NOT_FREE = _s64(0xC000030400000000)
MISSING_PAMT_PAGE_PAIR = _s64(0xC000030500000000)      # chosen (open question 1)
PAMT_PAGE_NOT_EMPTY = _s64(0xC000030600000000)         # chosen (open question 1)
NO_PAMT_PAGE_PAIR = _s64(0xC000030700000000)           # chosen (open question 1)
TD_ASSOCIATED_PAGES_EXIST = _s64(0xC000040000000000)
OP_STATE_INCORRECT = _s64(0xC000060800000000)          # KVM's tdx_errno.h; not in tdx.md
FLUSHVP_NOT_DONE = _s64(0x8000082400000000)            # KVM's tdx_errno.h; not in tdx.md
EPT_WALK_FAILED = _s64(0xC0000B0000000000)
EPT_ENTRY_FREE = _s64(0xC0000B0100000000)
GPA_RANGE_NOT_BLOCKED = _s64(0xC0000B0600000000)
GPA_RANGE_ALREADY_BLOCKED = 0x00000B0700000000
TLB_TRACKING_NOT_DONE = _s64(0xC0000B0800000000)
EPT_INVALID_PROMOTE_CONDITIONS = _s64(0xC0000B0900000000)
PAGE_ALREADY_ACCEPTED = 0x00000B0A00000000
PAGE_SIZE_MISMATCH = _s64(0xC0000B0B00000000)
EPT_ENTRY_STATE_INCORRECT = _s64(0xC0000B0D00000000)
EPT_PAGE_NOT_FREE = _s64(0xC0000B0E00000000)

#: every status, in a fixed order: the index is how per-status failure counts are kept
STATUS_NAMES = (
    "TDX_SUCCESS", "TDX_INTERRUPTED_RESUMABLE", "TDX_INTERRUPTED_RESTARTABLE",
    "TDX_OPERAND_INVALID", "TDX_OPERAND_ADDR_RANGE_ERROR", "TDX_OPERAND_BUSY",
    "TDX_PREVIOUS_TLB_EPOCH_BUSY", "TDX_OPERAND_BUSY_HOST_PRIORITY", "TDX_PAGE_METADATA_INCORRECT",
    "TDX_PAGE_NOT_FREE", "TDX_HPA_RANGE_NOT_FREE", "TDX_MISSING_PAMT_PAGE_PAIR",
    "TDX_PAMT_PAGE_NOT_EMPTY", "TDX_NO_PAMT_PAGE_PAIR", "TDX_TD_ASSOCIATED_PAGES_EXIST",
    "TDX_OP_STATE_INCORRECT", "TDX_FLUSHVP_NOT_DONE",
    "TDX_EPT_WALK_FAILED", "TDX_EPT_ENTRY_FREE", "TDX_GPA_RANGE_NOT_BLOCKED",
    "TDX_GPA_RANGE_ALREADY_BLOCKED", "TDX_TLB_TRACKING_NOT_DONE",
    "TDX_EPT_INVALID_PROMOTE_CONDITIONS", "TDX_PAGE_ALREADY_ACCEPTED", "TDX_PAGE_SIZE_MISMATCH",
    "TDX_EPT_ENTRY_STATE_INCORRECT", "TDX_EPT_PAGE_NOT_FREE",
)
STATUS_VALUES = (
    SUCCESS, INTERRUPTED_RESUMABLE, INTERRUPTED_RESTARTABLE, OPERAND_INVALID,
    OPERAND_ADDR_RANGE_ERROR, OPERAND_BUSY, PREVIOUS_TLB_EPOCH_BUSY, OPERAND_BUSY_HOST_PRIORITY,
    PAGE_METADATA_INCORRECT, PAGE_NOT_FREE, HPA_RANGE_NOT_FREE, MISSING_PAMT_PAGE_PAIR,
    PAMT_PAGE_NOT_EMPTY, NO_PAMT_PAGE_PAIR, TD_ASSOCIATED_PAGES_EXIST, OP_STATE_INCORRECT,
    FLUSHVP_NOT_DONE, EPT_WALK_FAILED,
    EPT_ENTRY_FREE, GPA_RANGE_NOT_BLOCKED, GPA_RANGE_ALREADY_BLOCKED, TLB_TRACKING_NOT_DONE,
    EPT_INVALID_PROMOTE_CONDITIONS, PAGE_ALREADY_ACCEPTED, PAGE_SIZE_MISMATCH,
    EPT_ENTRY_STATE_INCORRECT, EPT_PAGE_NOT_FREE,
)
N_STATUS = len(STATUS_VALUES)
STATUS_CHOSEN = frozenset({"TDX_MISSING_PAMT_PAGE_PAIR", "TDX_PAMT_PAGE_NOT_EMPTY",
                           "TDX_NO_PAMT_PAGE_PAIR"})
#: not an ABI status: TDG.MEM.PAGE.ACCEPT ended in a TD exit (an EPT violation whose exit
#: qualification carries the accept level) instead of returning to the guest
EXIT_EPT_VIOLATION = 0x0000EE0000000000

#: the PAMT removal hint, ORed into a returned HPA when a region's page count reached 0 (§1.2)
PAMT_REMOVAL_HINT = 1 << 62


def status_name(status: int) -> str:
    """``TDX_...`` for a status value (signed or unsigned form)."""
    s = _s64(unsigned(status))
    if s == EXIT_EPT_VIOLATION:
        return "EXIT_EPT_VIOLATION"
    for name, value in zip(STATUS_NAMES, STATUS_VALUES):
        if value == s:
            return name
    return f"0x{unsigned(status):016X}"


# --- S-EPT entry states (§2.3, public codes) ------------------------------------------------------
SEPT_FREE = 0x0
SEPT_REMOVED = 0x5
SEPT_NL_MAPPED = 0x84
SEPT_NL_BLOCKED = 0x81
SEPT_MAPPED = 0x4
SEPT_BLOCKED = 0x1
SEPT_BLOCKEDW = 0x8
SEPT_PENDING = 0x2
SEPT_PENDING_BLOCKED = 0x3
SEPT_PENDING_BLOCKEDW = 0x10
SEPT_STATE_NAMES = {
    SEPT_FREE: "FREE", SEPT_REMOVED: "REMOVED", SEPT_NL_MAPPED: "NL_MAPPED",
    SEPT_NL_BLOCKED: "NL_BLOCKED", SEPT_MAPPED: "MAPPED", SEPT_BLOCKED: "BLOCKED",
    SEPT_BLOCKEDW: "BLOCKEDW", SEPT_PENDING: "PENDING", SEPT_PENDING_BLOCKED: "PENDING_BLOCKED",
    SEPT_PENDING_BLOCKEDW: "PENDING_BLOCKEDW",
}

# --- PAMT page types (§1.1) -----------------------------------------------------------------------
PT_NDA = 0
PT_RSVD = 1
PT_REG = 3
PT_TDR = 4
PT_TDCX = 5
PT_TDVPR = 6
PT_EPT = 8
PT_PAMT = 15
PAGE_TYPE_NAMES = {PT_NDA: "NDA", PT_RSVD: "RSVD", PT_REG: "REG", PT_TDR: "TDR",
                   PT_TDCX: "TDCX", PT_TDVPR: "TDVPR", PT_EPT: "EPT", PT_PAMT: "PAMT"}

# --- levels (§2.2): 0 = 4K, 1 = 2M, 2 = 1G, the same numbers as emu.model.consts.LVL_* ---------

# --- SEAMCALL and TDCALL leaves (§2.1) ------------------------------------------------------------
#: (ABI name, leaf number), in the order of emu's firmware-call table for the vendor
CALLS = (
    ("TDH.MNG.CREATE", 9), ("TDH.MNG.ADDCX", 1), ("TDH.MNG.KEY.CONFIG", 8), ("TDH.MNG.INIT", 21),
    ("TDH.VP.CREATE", 10), ("TDH.VP.ADDCX", 4), ("TDH.VP.INIT", 22), ("TDH.VP.ENTER", 0),
    ("TDH.MEM.PAGE.ADD", 2), ("TDH.MR.EXTEND", 16), ("TDH.MR.FINALIZE", 17),
    ("TDH.MEM.SEPT.ADD", 3), ("TDH.MEM.PAGE.AUG", 6), ("TDH.MEM.RANGE.BLOCK", 7),
    ("TDH.MEM.RANGE.UNBLOCK", 39), ("TDH.MEM.TRACK", 38), ("TDH.MEM.PAGE.REMOVE", 29),
    ("TDH.MEM.SEPT.REMOVE", 30), ("TDH.MEM.PAGE.DEMOTE", 15), ("TDH.MEM.PAGE.PROMOTE", 23),
    ("TDH.PHYMEM.PAGE.RECLAIM", 28), ("TDH.PHYMEM.PAGE.WBINVD", 41),
    ("TDH.PHYMEM.PAMT.ADD", 58), ("TDH.PHYMEM.PAMT.REMOVE", 59), ("TDH.VP.FLUSH", 18),
    ("TDH.MNG.VPFLUSHDONE", 19), ("TDH.PHYMEM.CACHE.WB", 40), ("TDH.MNG.KEY.FREEID", 20),
    ("TDG.MEM.PAGE.ACCEPT", 6),
)
CALL_NAMES = tuple(name for name, _ in CALLS)
CALL_LEAF = tuple(leaf for _, leaf in CALLS)
(FW_MNG_CREATE, FW_MNG_ADDCX, FW_MNG_KEY_CONFIG, FW_MNG_INIT, FW_VP_CREATE, FW_VP_ADDCX,
 FW_VP_INIT, FW_VP_ENTER, FW_PAGE_ADD, FW_MR_EXTEND, FW_MR_FINALIZE, FW_SEPT_ADD, FW_PAGE_AUG,
 FW_RANGE_BLOCK, FW_RANGE_UNBLOCK, FW_TRACK, FW_PAGE_REMOVE, FW_SEPT_REMOVE, FW_DEMOTE,
 FW_PROMOTE, FW_RECLAIM, FW_WBINVD, FW_PAMT_ADD, FW_PAMT_REMOVE, FW_VP_FLUSH,
 FW_VPFLUSHDONE, FW_CACHE_WB, FW_KEY_FREEID, FW_ACCEPT) = range(len(CALLS))
N_CALLS = len(CALLS)
