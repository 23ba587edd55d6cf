"""``snp``: AMD SEV-SNP, the RMP with its instructions and firmware commands, and KVM's SNP glue.

    emu run examples/snp-boot.toml --vendor snp                  # 2M guest_memfd folios (THP RFC)
    emu run examples/snp-boot.toml --vendor snp:gmem=upstream    # 4K folios only, as upstream

Modules: ``abi`` (codes, entry fields, page states), ``state`` (the arrays), ``rmp`` (every RMP
instruction and firmware command), ``glue`` (KVM's and the host kernel's side), ``costs``,
``report`` (the summary rows), ``script`` (driving the RMP instruction by instruction from
Python). Facts and their sources: ``reference/snp.md``.
"""
from __future__ import annotations

from emu import hookimpl
from emu.model import consts as C
from emu.records import Field, Option, ProbePoint, Resource, Vendor

from emu_snp import abi, glue
from emu_snp import state as T
from emu_snp.costs import COSTS
from emu_snp.report import summarize

__version__ = "0.1.0"

OPTIONS = (
    Option("gmem", "choice", "thp", "guest_memfd folios: 'upstream' hands out 4K folios only, so "
           "every RMP entry and private mapping is 4K (snp.md §3); 'thp' 2M folios where the "
           "backing allows, as the 2M THP series does (§4.6)", ("upstream", "thp")),
    Option("psc_max_entries", "int", 64, "entries per page-state-change request from the guest: "
           "64 in the Linux guest, up to 253 in the GHCB protocol (§4.3)"),
    Option("rescind", "bool", True, "the guest rescinds validation (PVALIDATE validate=0) before "
           "a page goes shared, as Linux does ([GUEST]); a 4K rescind on a 2M entry makes KVM "
           "PSMASH (§4.3, inferred). Off: the hole punch PSMASHes instead"),
    Option("conflict_code", "choice", "overlap", "inferred (§1, §8.1): the code of a 2M "
           "RMPUPDATE over a range with an assigned 4K entry: FAIL_OVERLAP (the firmware's "
           "sub-page count) or FAIL_INPUT", ("overlap", "input")),
    Option("update_in_2m", "choice", "overlap", "inferred (R2, §8.1): a 4K RMPUPDATE inside an "
           "assigned 2M entry fails FAIL_OVERLAP, or succeeds after the hardware smashes the "
           "entry", ("overlap", "smash")),
    Option("reassign_validated", "choice", "clear", "inferred from VeriSMo (§2): a reassigned "
           "page comes out unvalidated ('clear'), or keeps Validated ('keep')",
           ("clear", "keep")),
    Option("psmash_perms", "choice", "keep", "inferred (R3, §8.2): PSMASH copies the VMPL "
           "permissions into the 512 entries ('keep') or resets them", ("keep", "reset")),
    Option("direct_map", "choice", "1g", "the host direct map's page size at boot: 1G "
           "(gbpages), 2M (nogbpages) or 4K (e.g. debug_pagealloc): what the one-way splits "
           "before 4K RMPUPDATEs cost (§2)", T.DIRECT_MAP_CHOICES),
    Option("busy", "float", 0.0, "chance that an RMPUPDATE or PSMASH finds its 2M range held by "
           "the firmware or another CPU, so Linux and KVM retry it (FAIL_OVERLAP / FAIL_INUSE, "
           "§2); 0 by default, as emu runs one thing at a time"),
    Option("reclaim_fail", "float", 0.0, "chance that SNP_PAGE_RECLAIM fails (fault "
           "injection): KVM leaks the page (snp_leak_pages, §4.5)"),
)


def make_state(layout, options, tables):
    return T.make_state(layout, options, tables)


def knobs(options):
    """guest_memfd's largest folio: 4K upstream, 2M with the THP series."""
    return {"gmem_max_level": C.LVL_2M if options["gmem"] == "thp" else C.LVL_4K}


def _f(name, doc="", kind="int", names=()):
    return Field(name, kind, doc, names)


#: instruction return codes by name in probe output (emu_snp.abi; #NPF exits as error bits)
_CODE_NAMES = tuple(abi.INSN_CODE_NAMES.items())
_RC = _f("result", "return code (emu_snp.abi): 0 success; #NPF exits as error-code bits",
         "snp_code", _CODE_NAMES)
_NS = _f("ns", "virtual time charged", "ns")

POINTS = (
    ProbePoint("snp:rmpupdate", "RMPUPDATE returned", (
        _f("pfn"), _f("gfn", "the new GPA's frame"), _f("asid"),
        _f("state", "assigned | pagesize << 1 | immutable << 2"), _RC, _NS)),
    ProbePoint("snp:psmash", "PSMASH returned", (_f("pfn", "2M-aligned frame"), _RC, _NS)),
    ProbePoint("snp:pvalidate", "the guest's PVALIDATE returned or exited", (
        _f("gfn"), _f("size", "0 = 4K, 1 = 2M"), _f("validate", "1 validate, 0 rescind"),
        _RC, _NS)),
    ProbePoint("snp:rmpadjust", "the guest's RMPADJUST returned or exited", (
        _f("gfn"), _f("size"), _f("vmpl", "target VMPL"), _RC, _NS)),
    ProbePoint("snp:rmpread", "RMPREAD returned", (_f("pfn"), _RC, _NS)),
    ProbePoint("snp:fw", "a SEV firmware command returned", (
        _f("command", "the command (emu_snp.abi.CALL_NAMES)", "snp_call", abi.CALL_NAMES),
        _f("a0", "first operand"), _f("a1", "second operand"),
        _f("status", "SEV status (psp-sev.h)", "sev_status",
           tuple(abi.SEV_STATUS_NAMES.items())), _NS)),
    ProbePoint("snp:rmp_fault", "KVM handled an RMP #NPF (the kvm_rmp_fault tracepoint)", (
        _f("gfn"), _f("pfn"), _f("level", "RMP level found", "level"),
        _f("psmash_ret", "PSMASH's code (-1: entry unassigned)"),
        _f("trigger", "0: PVALIDATE/RMPADJUST size mismatch, 1: NPT smaller than RMP"))),
    ProbePoint("snp:psc", "the guest's page-state change went out", (
        _f("gfn"), _f("npages"), _f("entries"), _f("requests", "VMGEXITs"),
        _f("to_shared", "", "bool"), _f("userspace_exits", "KVM_HC_MAP_GPA_RANGE exits"))),
    ProbePoint("snp:prepare", "sev_gmem_prepare made a folio private in the RMP", (
        _f("gfn"), _f("pfn"), _f("npages"), _f("entries_2m"), _f("entries_4k"))),
    ProbePoint("snp:invalidate", "sev_gmem_invalidate gave freed frames back to the host", (
        _f("gfn"), _f("pfn"), _f("npages"), _f("psmashes"), _f("shared_2m"), _f("shared_4k"))),
    ProbePoint("snp:split", "a 2M RMP entry or a large direct-map page was split", (
        _f("what", "0: RMP entry (PSMASH), 1: direct map 2M->4K, 2: direct map 1G->2M",
           "snp_split", ("rmp", "direct_map_2m", "direct_map_1g")),
        _f("pfn"), _f("cause", "RMP: emu cause (kvm:split's); direct map: "
                      "emu_snp.state.DM_CAUSE_NAMES"))),
    ProbePoint("snp:merge", "a 2M RMP entry formed again", (
        _f("pfn"), _f("cause", "how it formed (emu_snp.state.MERGE_NAMES)", "snp_merge",
                      T.MERGE_NAMES))),
)

KERNELS = {name: getattr(glue, name) for name in (
    "host_init", "vm_init", "vcpu_init", "vcpu_exit", "build_add", "gmem_prepare",
    "gmem_invalidate", "gmem_max_mapping_level", "set_external_spte", "page_state_change",
    "guest_accept", "vcpu_destroy", "vm_destroy", "check",
)}


@hookimpl
def emu_vendors():
    return [
        Vendor(
            name="snp",
            summary="AMD SEV-SNP: the RMP, its instructions and firmware commands, KVM's SNP "
                    "glue",
            state=T.SnpState,
            make_state=make_state,
            kernels=KERNELS,
            options=OPTIONS,
            costs=COSTS,
            locks=(Resource("sev_cmd_mutex", "the host's mutex around every SEV firmware "
                            "command (__sev_do_cmd_locked)", sleeps=True),),
            sites=tuple(Resource(n) for n in T.SITE_NAMES),
            counters=tuple(Resource(n) for n in T.COUNTER_NAMES),
            fw_calls=tuple(Resource(n) for n in abi.CALL_NAMES),
            points=POINTS,
            private_memory=True,
            exact_zap=False,
            external_spt=False,
            max_level=C.LVL_1G,
            gmem_max_level=C.LVL_2M,
            owner_labels={
                "static_metadata": "the RMP (16 B per 4K frame + 16 KiB, in whole 2M regions)",
                "fw_control": "guest contexts and VMSAs",
                "host": "host kernel, including direct-map page tables split for the RMP",
            },
            summarize=summarize,
            knobs=knobs,
        )
    ]


__all__ = ["emu_vendors"]
