"""``tdx``: Intel TDX, the TDX module's Secure EPT and PAMT, and KVM's TDX glue, with static or
Dynamic PAMT and the Dynamic PAMT allocation policies of the LKML debate.

    emu run examples/tdx-boot.toml --vendor tdx:policy=running-vcpu
    emu run examples/tdx-boot.toml --vendor tdx:pamt=static

Modules: ``abi`` (leaves, status codes, states), ``state`` (the arrays), ``module`` (every
SEAMCALL), ``dpamt`` (the kernel's refcounts and ``tdx_pamt_get/put``), ``glue`` (KVM's side and
the policies), ``costs``, ``sizes`` (boot-time PAMT), ``script`` (driving the module call by
call from Python), ``policies`` (what each policy is and claims). Facts and their sources:
``reference/tdx.md``.
"""
from __future__ import annotations

from emu import hookimpl
from emu.model import consts as C
from emu.records import Field, Option, ProbePoint, Resource, Vendor

from emu_tdx import abi, glue, report
from emu_tdx import state as T
from emu_tdx.costs import COSTS
from emu_tdx.policies import POLICY_DOCS
from emu_tdx.sizes import pamt_sizes

__version__ = "0.1.0"

OPTIONS = (
    Option("pamt", "choice", "dynamic", "PAMT flavour: the boot-time 0.4% static PAMT, or "
           "Dynamic PAMT with page pairs added per 2M region at run time", ("static", "dynamic")),
    Option("policy", "choice", "running-vcpu", "where Dynamic PAMT page pairs come from (see "
           "emu_tdx.policies); ignored with pamt=static", T.POLICIES),
    Option("huge_pages", "bool", True, "map private memory at 2M when the folio allows "
           "(kvm_intel.tdx_huge_page)"),
    Option("promote", "bool", False, "merge 512 4K leaves back into 2M with "
           "TDH.MEM.PAGE.PROMOTE on huge-page recovery (off in the kernel)"),
    Option("tdcs_pages", "int", 4, "TDCS pages per TD (module metadata tdcs_base_size / 4K; an "
           "estimate, tdx.md gives no number)"),
    Option("tdvps_pages", "int", 6, "TDVPS pages per vCPU, the TDVPR included (module "
           "metadata tdvps_base_size / 4K; an estimate)"),
    Option("tdmr_size", "size", 1 << 40, "size of each TDMR the host is covered with (PAMT is "
           "sized per TDMR)"),
)


def make_state(layout, options, tables):
    if not 1 <= options["tdcs_pages"] <= T.MAX_TDCS:
        from emu.errors import EmuError
        raise EmuError(f"vendor 'tdx': tdcs_pages must be 1..{T.MAX_TDCS}")
    if not 2 <= options["tdvps_pages"] <= T.MAX_TDCX + 1:
        from emu.errors import EmuError
        raise EmuError(f"vendor 'tdx': tdvps_pages must be 2..{T.MAX_TDCX + 1}")
    V = T.make_state(layout, options, tables)
    sizes = pamt_sizes(layout.host_pages, options["pamt"] == "dynamic", options["tdmr_size"])
    V.stat[T.ST_STATIC_PAMT_PAGES] = sizes.static_pages
    V.stat[T.ST_REFCOUNT_PAGES] = sizes.refcount_pages
    V.stat[T.ST_TDMRS] = sizes.tdmrs
    return V


def knobs(options):
    return {"max_level": C.LVL_2M if options["huge_pages"] else C.LVL_4K}


def summarize(V, S) -> dict:
    """Vendor rows for the report: PAMT memory, pairs, and failed calls by status."""
    failed = {}
    for call, name in enumerate(abi.CALL_NAMES):
        for i, status in enumerate(abi.STATUS_NAMES):
            n = int(V.fail_status[call, i])
            if n:
                failed[f"{name} {status}"] = n
    host_pages = int(S.own_pages.sum())
    static = int(V.stat[T.ST_STATIC_PAMT_PAGES])
    return {
        "pamt": "dynamic" if V.opt[T.OPT_DPAMT] else "static",
        "policy": T.POLICIES[int(V.opt[T.OPT_POLICY])] if V.opt[T.OPT_DPAMT] else None,
        "tdmrs": int(V.stat[T.ST_TDMRS]),
        "pamt_static_pages": static,
        "pamt_static_percent": round(100.0 * static / host_pages, 4) if host_pages else 0.0,
        "refcount_pages": int(V.stat[T.ST_REFCOUNT_PAGES]),
        "pamt_pairs_now": int(V.stat[T.ST_PAIRS]),
        "pamt_pairs_peak": int(V.stat[T.ST_PAIRS_PEAK]),
        "failed_calls": failed,
    }


def _pool(name, doc, scope, cap, minimum):
    return Resource(name, doc, scope=scope, capacity=cap, minimum=minimum)


POOLS = (
    _pool("mmu_external_spt_cache", "S-EPT pages for the fault path (KVM's "
          "vcpu->arch.mmu_external_spt_cache: 40, topped up below 5)", "vcpu", 40, 5),
    _pool("external_split_cache", "S-EPT pages for splits without a vCPU (HP3's per-VM "
          "prealloc_split_cache; one per huge leaf a range can cross at each end)", "vm", 2, 2),
    _pool("pamt_page_cache", "Dynamic PAMT pages for the fault path: 5 pairs = 10 pages "
          "(v6 topup_external_cache, tdx.md §3.2)", "vcpu", 10, 10),
    _pool("pamt_vm_cache", "Dynamic PAMT pages for splits without a vCPU: 4 pages per split, "
          "two splits per range (tdx.md §4.3)", "vm", 8, 8),
    _pool("sept_kmem_cache", "kmem-cache policy: S-EPT pages whose constructor installed "
          "PAMT, kept with it when freed", "global", 4096, 0),
)

#: TDX statuses by name in probe output (the signed form of the ABI value, as events carry it)
_STATUS_NAMES = (*zip(abi.STATUS_VALUES, abi.STATUS_NAMES),
                 (abi.EXIT_EPT_VIOLATION, "EXIT_EPT_VIOLATION"))


def _status(doc="TDX status (signed form of the ABI value)"):
    return Field("status", "tdx_status", doc, _STATUS_NAMES)


POINTS = (
    ProbePoint("tdx:seamcall", "a SEAMCALL returned", (
        Field("call", "tdx_call", "the SEAMCALL leaf (emu_tdx.abi.CALL_NAMES)", abi.CALL_NAMES),
        Field("a0", doc="first operand"),
        Field("a1", doc="second operand"), Field("a2", doc="third operand"),
        _status(), Field("ns", "ns", "virtual time charged"))),
    ProbePoint("tdx:pamt_get", "tdx_pamt_get: a reference on a 2M region's PAMT", (
        Field("region", doc="host 2M region"), Field("refcount", doc="after the get"),
        Field("added", doc="1 if TDH.PHYMEM.PAMT.ADD ran"))),
    ProbePoint("tdx:pamt_put", "tdx_pamt_put: a reference dropped", (
        Field("region"), Field("refcount", doc="after the put"),
        Field("removed", doc="1 if TDH.PHYMEM.PAMT.REMOVE ran"))),
    ProbePoint("tdx:accept", "the guest's TDG.MEM.PAGE.ACCEPT", (
        Field("gfn"), Field("level", "level"), _status(), Field("ns", "ns"))),
    ProbePoint("tdx:pamt_add", "TDH.PHYMEM.PAMT.ADD installed (or refused) a 2M region's "
               "page pair", (
        Field("region", doc="host 2M region"), Field("page0", doc="first page of the pair"),
        Field("page1", doc="second page of the pair"), _status(),
        Field("lazy", "bool", "1 when added after MISSING_PAMT_PAGE_PAIR (policy lazy)"))),
    ProbePoint("tdx:pamt_remove", "TDH.PHYMEM.PAMT.REMOVE took a region's pair back (or "
               "refused)", (
        Field("region", doc="host 2M region"), Field("page0", doc="-1 when refused"),
        Field("page1", doc="-1 when refused"), _status())),
)

KERNELS = {name: getattr(glue, name) for name in (
    "host_init", "vm_init", "vm_pre_destroy", "vm_destroy", "vcpu_init", "vcpu_destroy",
    "vcpu_exit", "vcpu_enter", "topup", "alloc_external_spt", "release_external_spt",
    "gmem_prepare", "gmem_invalidate", "gmem_max_mapping_level", "phys_prepare", "phys_cleanup",
    "link_external_spt", "set_external_spte", "remove_external_spte", "free_external_spt",
    "split_external_spte", "merge_external_spte", "guest_accept", "build_add", "check",
)}


@hookimpl
def emu_report_sections():
    return [report.SECTION]


@hookimpl
def emu_vendors():
    return [
        Vendor(
            name="tdx",
            summary="Intel TDX: Secure EPT, static or Dynamic PAMT, KVM's TDX glue",
            state=T.TdxState,
            make_state=make_state,
            kernels=KERNELS,
            options=OPTIONS,
            costs=COSTS,
            locks=(Resource("pamt_lock", "global spinlock serialising PAMT.ADD/REMOVE with the "
                            "refcount check (tdx.md §3.1)"),),
            pools=POOLS,
            sites=tuple(Resource(n) for n in T.SITE_NAMES),
            counters=tuple(Resource(n) for n in T.COUNTER_NAMES),
            fw_calls=tuple(Resource(n) for n in abi.CALL_NAMES),
            points=POINTS,
            private_memory=True,
            exact_zap=True,
            external_spt=True,
            max_level=C.LVL_2M,
            owner_labels={
                "static_metadata": "PAMT (boot-time part) and DPAMT refcounts",
                "fw_metadata": "Dynamic PAMT page pairs",
                "fw_control": "TDR, TDCS, TDVPR, TDCX",
                "fw_page_table": "Secure EPT pages",
                "vendor_pool": "TDX caches (S-EPT and PAMT pages)",
            },
            summarize=summarize,
            knobs=knobs,
        )
    ]


__all__ = ["POLICY_DOCS", "emu_vendors"]

# the kernels emit by index (emu_tdx.state.POINT_*): the declared order must match
assert tuple(p.name for p in POINTS) == T.POINT_NAMES
