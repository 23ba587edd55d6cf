"""The SEV-SNP ABI as emu models it: the RMP instructions' return codes, the SEV firmware's
status codes, the RMP entry fields and page states, and the table of calls.

Sources (tags of ``reference/snp.md``):

* instruction return codes: §2 ([MS-x], [K-hdr], [VERISMO ``def_s.rs``]): RMPUPDATE 0-4,
  PSMASH 0-3 and 7, PVALIDATE 0, 1, 6 and CF=1 (Linux's software code 255,
  ``PVALIDATE_FAIL_NOUPDATE``), RMPADJUST 0, 1, 2, 6, RMPREAD 0-2. [MS-psmash] gives code 7
  only its meaning ("the page doesn't meet the requirements for expansion"); the name
  ``FAIL_EXPAND`` is chosen here;
* an instruction that ends in a nested page fault instead of returning (PVALIDATE or RMPADJUST
  at 4K on a 2M entry; an entry the guest does not own) is reported with the #NPF error-code
  bits KVM sees (§3: PFERR_GUEST_RMP bit 31, PFERR_GUEST_SIZEM bit 35), like the TDX plugin's
  ``EXIT_EPT_VIOLATION``: those are exits, not return codes;
* SEV firmware status codes: ``snp.md`` names the commands and their rules (§2, [FW]) but not
  the numbers; the values are those of Linux's ``include/uapi/linux/psp-sev.h``
  (``sev_ret_code``), which KVM returns to userspace. Which code a rule violation gives is
  chosen where [FW] was not quoted, and marked so in :data:`STATUS_CHOSEN`;
* RMP entry fields and page states: §1 ([K-host] ``struct rmpentry_raw``, [FW]
  ``rmp_fields_t`` and ``snp_page_state_t``); launch page types: Linux's
  ``KVM_SEV_SNP_PAGE_TYPE_*`` (uapi ``kvm.h``).
"""
from __future__ import annotations

# --- instruction return codes (§2) ----------------------------------------------------------------
SUCCESS = 0
FAIL_INPUT = 1
FAIL_PERMISSION = 2
FAIL_INUSE = 3
FAIL_OVERLAP = 4
FAIL_SIZEMISMATCH = 6
FAIL_EXPAND = 7                 # PSMASH: "doesn't meet the requirements for expansion" (name chosen)
FAIL_NOUPDATE = 255             # PVALIDATE/RMPADJUST left the entry unchanged (CF=1), Linux's code

# --- exits instead of a return (§3, #NPF error code bits) -----------------------------------------
PFERR_GUEST_RMP = 1 << 31
PFERR_GUEST_SIZEM = 1 << 35
NPF_RMP = PFERR_GUEST_RMP                       # an RMP check failed: KVM sees an RMP #NPF
NPF_RMP_SIZEM = PFERR_GUEST_RMP | PFERR_GUEST_SIZEM  # 4K request on a 2M entry: KVM must PSMASH

# --- SEV firmware status codes (psp-sev.h sev_ret_code) -------------------------------------------
SEV_SUCCESS = 0x00
SEV_INVALID_PLATFORM_STATE = 0x01
SEV_INVALID_GUEST_STATE = 0x02
SEV_INVALID_ADDRESS = 0x09
SEV_ASID_OWNED = 0x0C
SEV_INVALID_ASID = 0x0D
SEV_INVALID_GUEST = 0x10
SEV_HWSEV_RET_PLATFORM = 0x13   # "hardware error": what the reclaim_fail injection returns
SEV_INVALID_PARAM = 0x16
SEV_INVALID_PAGE_SIZE = 0x19
SEV_INVALID_PAGE_STATE = 0x1A
SEV_INVALID_PAGE_OWNER = 0x1C

#: name of each SEV firmware status emu returns
SEV_STATUS_NAMES = {
    SEV_SUCCESS: "SEV_RET_SUCCESS", SEV_INVALID_PLATFORM_STATE: "SEV_RET_INVALID_PLATFORM_STATE",
    SEV_INVALID_GUEST_STATE: "SEV_RET_INVALID_GUEST_STATE",
    SEV_INVALID_ADDRESS: "SEV_RET_INVALID_ADDRESS", SEV_ASID_OWNED: "SEV_RET_ASID_OWNED",
    SEV_INVALID_ASID: "SEV_RET_INVALID_ASID", SEV_INVALID_GUEST: "SEV_RET_INVALID_GUEST",
    SEV_HWSEV_RET_PLATFORM: "SEV_RET_HWSEV_RET_PLATFORM",
    SEV_INVALID_PARAM: "SEV_RET_INVALID_PARAM", SEV_INVALID_PAGE_SIZE: "SEV_RET_INVALID_PAGE_SIZE",
    SEV_INVALID_PAGE_STATE: "SEV_RET_INVALID_PAGE_STATE",
    SEV_INVALID_PAGE_OWNER: "SEV_RET_INVALID_PAGE_OWNER",
}
#: which rule gives which code where [FW] was not quoted in snp.md (chosen here)
STATUS_CHOSEN = {
    "SEV_RET_INVALID_GUEST": "a guest context address that is not a live guest context page",
    "SEV_RET_INVALID_GUEST_STATE": "a command in the wrong guest lifecycle state",
    "SEV_RET_INVALID_PAGE_OWNER": "LAUNCH_UPDATE of a Pre-Guest page of another ASID",
    "SEV_RET_INVALID_ADDRESS": "a 2M page at an address that is not 2M aligned",
    "SEV_RET_INVALID_PAGE_STATE": "UNSMASH over 512 pages that do not meet its preconditions",
}

# --- the raw RMP entry (§1): emu keeps these fields per 4K frame ----------------------------------
# V.rmp_flags bits (the first quadword's single-bit fields, renumbered to fit a byte)
F_ASSIGNED = 0x01
F_2M = 0x02                     # Page_Size: the entry is a 2M entry (meaningful on 2M-aligned ones)
F_IMMUTABLE = 0x04
F_VALIDATED = 0x08
F_VMSA = 0x10
F_LOCK = 0x20                   # [FW] bit 63: the firmware (another CPU) holds the entry
#: the GPA field of the VMSA launched by KVM, INITIAL_VMSA_GPA = 0xFFFFFFFFF000 ([K-kvm]),
#: which does not fit emu's 32-bit guest frame numbers: stored as all ones
VMSA_GFN = 0xFFFFFFFFF
GFN_VMSA_STORED = 0xFFFFFFFF
#: VMPL permission bits per VMPL 1..3 (§1, [FW] ``vmpl_perm_mask_t``): read, write, execute
#: user, execute supervisor, supervisor shadow stack, 5 bits each in ``V.rmp_perm``
PERM_BITS = 5
PERM_ALL = 0x1F
MAX_ASID = 0x3FF                # the 10-bit ASID field

# --- page states (§2 "Page states", [FW] snp_page_state_t) ----------------------------------------
STATE_NAMES = ("HYPERVISOR", "HV_FIXED", "FIRMWARE", "RECLAIM", "CONTEXT", "PRE_GUEST",
               "PRE_SWAP", "GUEST_INVALID", "GUEST_VALID")
(ST_HYPERVISOR, ST_HV_FIXED, ST_FIRMWARE, ST_RECLAIM, ST_CONTEXT, ST_PRE_GUEST, ST_PRE_SWAP,
 ST_GUEST_INVALID, ST_GUEST_VALID) = range(len(STATE_NAMES))


def page_state(flags: int, asid: int) -> int:
    """The page state of an entry with ``flags`` (``F_*``) and ``asid`` (the [FW] decoding).

    METADATA (a firmware page with a GPA tag) cannot be told from FIRMWARE without the tag,
    which emu does not keep: such pages decode as FIRMWARE.
    """
    a = bool(flags & F_ASSIGNED)
    v = bool(flags & F_VALIDATED)
    i = bool(flags & F_IMMUTABLE)
    if not a:
        return ST_HV_FIXED if i else ST_HYPERVISOR
    if asid == 0:
        if i:
            return ST_CONTEXT if flags & F_VMSA else ST_FIRMWARE
        return ST_RECLAIM
    if i:
        return ST_PRE_SWAP if v else ST_PRE_GUEST
    return ST_GUEST_VALID if v else ST_GUEST_INVALID


# --- launch page types (Linux uapi kvm.h KVM_SEV_SNP_PAGE_TYPE_*) --------------------------------
PAGE_NORMAL = 1
PAGE_VMSA = 2
PAGE_ZERO = 3
PAGE_UNMEASURED = 4
PAGE_SECRETS = 5
PAGE_CPUID = 6
PAGE_TYPE_NAMES = {PAGE_NORMAL: "NORMAL", PAGE_VMSA: "VMSA", PAGE_ZERO: "ZERO",
                   PAGE_UNMEASURED: "UNMEASURED", PAGE_SECRETS: "SECRETS", PAGE_CPUID: "CPUID"}

# --- the calls: RMP instructions, then SEV firmware commands --------------------------------------
#: (name, kind): kind "insn" for a CPU instruction, "fw" for a firmware (PSP) command; the order
#: is emu's firmware-call table for the vendor (``S.fw_count``)
CALLS = (
    ("RMPUPDATE", "insn"), ("PSMASH", "insn"), ("PVALIDATE", "insn"), ("RMPADJUST", "insn"),
    ("RMPREAD", "insn"),
    ("SNP_GCTX_CREATE", "fw"), ("SNP_LAUNCH_START", "fw"), ("SNP_ACTIVATE", "fw"),
    ("SNP_LAUNCH_UPDATE", "fw"), ("SNP_LAUNCH_FINISH", "fw"), ("SNP_DECOMMISSION", "fw"),
    ("SNP_PAGE_RECLAIM", "fw"), ("SNP_PAGE_UNSMASH", "fw"),
)
CALL_NAMES = tuple(n for n, _ in CALLS)
CALL_KINDS = tuple(k for _, k in CALLS)
(FW_RMPUPDATE, FW_PSMASH, FW_PVALIDATE, FW_RMPADJUST, FW_RMPREAD, FW_GCTX_CREATE,
 FW_LAUNCH_START, FW_ACTIVATE, FW_LAUNCH_UPDATE, FW_LAUNCH_FINISH, FW_DECOMMISSION,
 FW_RECLAIM, FW_UNSMASH) = range(len(CALLS))
N_CALLS = len(CALLS)
#: firmware command ids from [FW sev_mcmd.h] where snp.md gives them
FW_COMMAND_IDS = {"SNP_PAGE_RECLAIM": 0xC7, "SNP_PAGE_UNSMASH": 0xC8}

INSN_CODE_NAMES = {
    SUCCESS: "SUCCESS", FAIL_INPUT: "FAIL_INPUT", FAIL_PERMISSION: "FAIL_PERMISSION",
    FAIL_INUSE: "FAIL_INUSE", FAIL_OVERLAP: "FAIL_OVERLAP", FAIL_SIZEMISMATCH: "FAIL_SIZEMISMATCH",
    FAIL_EXPAND: "FAIL_EXPAND", FAIL_NOUPDATE: "FAIL_NOUPDATE",
    NPF_RMP: "#NPF(RMP)", NPF_RMP_SIZEM: "#NPF(RMP|SIZEM)",
}

# --- per-call outcome counts: codes folded into a small table (V.fail) ----------------------------
N_SLOTS = 64
SLOT_NOUPDATE = 60
SLOT_NPF_RMP = 61
SLOT_NPF_SIZEM = 62
SLOT_OTHER = 63


def slot_of(code: int) -> int:
    """The column of ``V.fail`` that counts ``code`` (kept in step with ``rmp.slot``)."""
    if 0 <= code < SLOT_NOUPDATE:
        return code
    return {FAIL_NOUPDATE: SLOT_NOUPDATE, NPF_RMP: SLOT_NPF_RMP,
            NPF_RMP_SIZEM: SLOT_NPF_SIZEM}.get(code, SLOT_OTHER)


def code_name(call: int, code: int) -> str:
    """The name of ``code`` as call ``call`` (an index of :data:`CALLS`) returns it."""
    if CALL_KINDS[call] == "fw":
        return SEV_STATUS_NAMES.get(code, f"0x{code:x}")
    if call == FW_PSMASH and code == FAIL_PERMISSION:
        return "FAIL_PERMISSION"
    return INSN_CODE_NAMES.get(code, f"0x{code:x}")


def slot_name(call: int, slot: int) -> str:
    """The name of the outcome counted in column ``slot`` of call ``call``'s row."""
    code = {SLOT_NOUPDATE: FAIL_NOUPDATE, SLOT_NPF_RMP: NPF_RMP,
            SLOT_NPF_SIZEM: NPF_RMP_SIZEM}.get(slot, slot)
    if slot == SLOT_OTHER:
        return "other"
    return code_name(call, code)


def is_failure(code: int) -> bool:
    """A return that counts as a failed call: not success, not an unchanged entry (CF=1, which
    Linux's caller decides about) and not an exit (the instruction is retried after it)."""
    return code != SUCCESS and code != FAIL_NOUPDATE and code != NPF_RMP and code != NPF_RMP_SIZEM
