"""Drive the TDX module call by call from Python, with the same kernels the emulator runs.

    >>> from emu_tdx.script import TdxModule
    >>> m = TdxModule(host="64MiB", guest="8MiB", pamt="dynamic")
    >>> tdr = m.page()
    >>> m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1).name      # no PAMT pair for tdr's region
    'TDX_MISSING_PAMT_PAGE_PAIR'
    >>> m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.region_of(tdr), page0=m.page(), page1=m.page()).ok
    True
    >>> m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1).ok
    True

Addresses are byte addresses, as in the ABI: HPAs of host frames (``page()`` hands out unused
4K frames, ``huge_page()`` unused 2M-aligned ranges) and GPAs inside the TD. A call returns a
:class:`Status` with the ABI status value, its name, and the output registers the call sets.
Operands are named after the ABI (see :data:`OPERANDS`); ``td`` on TDH.MNG.CREATE and ``vcpu``
on TDH.VP.CREATE name emu's slot for the new TD or vCPU (chosen for you when left out), and
TDG.MEM.PAGE.ACCEPT, a guest TDCALL, takes the ``td`` slot instead of a TDR. ``td_exit(tdvpr)``
ends a TDH.VP.ENTER (the TD exit).

The first use compiles the module's kernels into emu's on-disk cache (about a minute); later
sessions load them in a fraction of a second.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from emu import jit
from emu.model import consts as C
from emu.model.layout import Layout
from emu.workload.sizes import parse_size

from emu_tdx import abi as A
from emu_tdx import module as M
from emu_tdx import state as T

#: the operands each call takes, in the order its kernel takes them
OPERANDS = {
    "TDH.MNG.CREATE": ("td", "tdr", "hkid"),
    "TDH.MNG.ADDCX": ("page", "tdr"),
    "TDH.MNG.KEY.CONFIG": ("tdr",),
    "TDH.MNG.INIT": ("tdr",),
    "TDH.VP.CREATE": ("vcpu", "tdvpr", "tdr"),
    "TDH.VP.ADDCX": ("page", "tdvpr"),
    "TDH.VP.INIT": ("tdvpr",),
    "TDH.VP.ENTER": ("tdvpr",),
    "TDH.MEM.PAGE.ADD": ("gpa", "tdr", "hpa", "source"),
    "TDH.MR.EXTEND": ("gpa", "tdr"),
    "TDH.MR.FINALIZE": ("tdr",),
    "TDH.MEM.SEPT.ADD": ("gpa", "level", "tdr", "page"),
    "TDH.MEM.PAGE.AUG": ("gpa", "level", "tdr", "hpa"),
    "TDH.MEM.RANGE.BLOCK": ("gpa", "level", "tdr"),
    "TDH.MEM.RANGE.UNBLOCK": ("gpa", "level", "tdr"),
    "TDH.MEM.TRACK": ("tdr",),
    "TDH.MEM.PAGE.REMOVE": ("gpa", "level", "tdr"),
    "TDH.MEM.SEPT.REMOVE": ("gpa", "level", "tdr"),
    "TDH.MEM.PAGE.DEMOTE": ("gpa", "level", "tdr", "page", "pair0", "pair1"),
    "TDH.MEM.PAGE.PROMOTE": ("gpa", "level", "tdr"),
    "TDH.PHYMEM.PAGE.RECLAIM": ("hpa",),
    "TDH.PHYMEM.PAGE.WBINVD": ("hpa",),
    "TDH.PHYMEM.PAMT.ADD": ("hpa", "page0", "page1"),
    "TDH.PHYMEM.PAMT.REMOVE": ("hpa",),
    "TDH.VP.FLUSH": ("tdvpr",),
    "TDH.MNG.VPFLUSHDONE": ("tdr",),
    "TDH.PHYMEM.CACHE.WB": (),
    "TDH.MNG.KEY.FREEID": ("tdr",),
    "TDG.MEM.PAGE.ACCEPT": ("td", "gpa", "level"),
}
#: operands that are addresses (given in bytes, passed to the kernels as 4K frame numbers)
ADDRESSES = {"tdr", "tdvpr", "page", "hpa", "gpa", "source", "pair0", "pair1", "page0", "page1"}
#: outputs each call sets, by register
OUTPUTS = {
    "TDH.MEM.PAGE.REMOVE": ("rcx",), "TDH.MEM.SEPT.REMOVE": ("rcx",),
    "TDH.MEM.PAGE.PROMOTE": ("rcx", "r12", "r13"), "TDH.PHYMEM.PAGE.RECLAIM": ("rcx",),
    "TDH.PHYMEM.PAMT.REMOVE": ("rdx", "r8"),
}
_REG = {"rcx": 0, "rdx": 1, "r8": 2, "r12": 6, "r13": 7}


@njit(cache=True, _nrt=False)
def _call(S, V, call, a):
    """One call by its index in ``abi.CALL_NAMES`` with operands ``a`` (frame numbers)."""
    ctx = 0
    if call == A.FW_MNG_CREATE:
        return M.tdh_mng_create(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_MNG_ADDCX:
        return M.tdh_mng_addcx(V, S, ctx, a[0], a[1])
    if call == A.FW_MNG_KEY_CONFIG:
        return M.tdh_mng_key_config(V, S, ctx, a[0])
    if call == A.FW_MNG_INIT:
        return M.tdh_mng_init(V, S, ctx, a[0])
    if call == A.FW_VP_CREATE:
        return M.tdh_vp_create(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_VP_ADDCX:
        return M.tdh_vp_addcx(V, S, ctx, a[0], a[1])
    if call == A.FW_VP_INIT:
        return M.tdh_vp_init(V, S, ctx, a[0])
    if call == A.FW_VP_ENTER:
        return M.tdh_vp_enter(V, S, ctx, a[0])
    if call == A.FW_PAGE_ADD:
        return M.tdh_mem_page_add(V, S, ctx, a[0], a[1], a[2], a[3])
    if call == A.FW_MR_EXTEND:
        return M.tdh_mr_extend(V, S, ctx, a[0], a[1])
    if call == A.FW_MR_FINALIZE:
        return M.tdh_mr_finalize(V, S, ctx, a[0])
    if call == A.FW_SEPT_ADD:
        return M.tdh_mem_sept_add(V, S, ctx, a[0], a[1], a[2], a[3])
    if call == A.FW_PAGE_AUG:
        return M.tdh_mem_page_aug(V, S, ctx, a[0], a[1], a[2], a[3])
    if call == A.FW_RANGE_BLOCK:
        return M.tdh_mem_range_block(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_RANGE_UNBLOCK:
        return M.tdh_mem_range_unblock(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_TRACK:
        return M.tdh_mem_track(V, S, ctx, a[0])
    if call == A.FW_PAGE_REMOVE:
        return M.tdh_mem_page_remove(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_SEPT_REMOVE:
        return M.tdh_mem_sept_remove(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_DEMOTE:
        return M.tdh_mem_page_demote(V, S, ctx, a[0], a[1], a[2], a[3], a[4], a[5])
    if call == A.FW_PROMOTE:
        return M.tdh_mem_page_promote(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_RECLAIM:
        return M.tdh_phymem_page_reclaim(V, S, ctx, a[0])
    if call == A.FW_WBINVD:
        return M.tdh_phymem_page_wbinvd(V, S, ctx, a[0])
    if call == A.FW_PAMT_ADD:
        return M.tdh_phymem_pamt_add(V, S, ctx, a[0], a[1], a[2])
    if call == A.FW_PAMT_REMOVE:
        return M.tdh_phymem_pamt_remove(V, S, ctx, a[0])
    if call == A.FW_VP_FLUSH:
        return M.tdh_vp_flush(V, S, ctx, a[0])
    if call == A.FW_VPFLUSHDONE:
        return M.tdh_mng_vpflushdone(V, S, ctx, a[0])
    if call == A.FW_CACHE_WB:
        return M.tdh_phymem_cache_wb(V, S, ctx)
    if call == A.FW_KEY_FREEID:
        return M.tdh_mng_key_freeid(V, S, ctx, a[0])
    if call == A.FW_ACCEPT:
        return M.tdg_mem_page_accept(V, S, ctx, a[0], a[1], a[2])
    return A.OPERAND_INVALID


@njit(cache=True, _nrt=False)
def _td_exit(S, V, tdvpr):
    vp = M.vp_of(V, tdvpr)
    if vp >= 0:
        M.td_exit(V, vp, M.owner_of(V, tdvpr))


@dataclass
class Status:
    """What a call returned: the ABI status value (unsigned), its name, and output registers."""

    call: str
    status: int
    name: str
    out: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 0

    def __repr__(self) -> str:
        outs = "".join(f" {k}=0x{v:x}" for k, v in self.out.items())
        return f"<{self.call}: {self.name}{outs}>"


class TdxModule:
    """A TDX module over an emulated host, with ``tds`` TD slots of ``guest`` memory each."""

    def __init__(self, host="1GiB", guest="64MiB", tds=1, vcpus=2, pamt="dynamic",
                 tdcs_pages=4, tdvps_pages=6, cache_dir=None):
        import emu_tdx
        from emu.engine.session import EMU_JIT_SOURCES
        from emu.engine.tables import build_tables, make_core_state

        host_pages = parse_size(str(host)) // 4096
        guest_pages = parse_size(str(guest)) // 4096
        layout = Layout(host_pages=host_pages)
        for i in range(tds):
            layout.add_slot(f"td{i}", guest_pages, vcpus, C.BACK_4K)
        vendor = emu_tdx.emu_vendors()[0]
        tables = build_tables(vendor, {})
        options = {"pamt": pamt, "policy": "running-vcpu", "huge_pages": True, "promote": False,
                   "tdcs_pages": tdcs_pages, "tdvps_pages": tdvps_pages, "tdmr_size": 1 << 40}
        self.S = make_core_state(layout, tables, private_memory=True, exact_zap=True,
                                 external_spt=True, vendor_max_level=C.LVL_2M)
        self.V = emu_tdx.make_state(layout, options, tables)
        self.layout = layout
        self.guest_bytes = guest_pages * 4096
        root = Path(cache_dir) if cache_dir else jit.default_cache_root()
        jit.activate_cache(root, [*EMU_JIT_SOURCES, Path(emu_tdx.__file__).parent])
        self._next = 0
        self._next_td = 0
        self._next_vcpu = 0

    # --- host memory ------------------------------------------------------------------------------
    def page(self) -> int:
        """The HPA of an unused 4K host frame."""
        if self._next >= self.layout.host_pages:
            raise MemoryError("the emulated host has no unused frame left")
        pfn = self._next
        self._next += 1
        return pfn << 12

    def huge_page(self) -> int:
        """The HPA of an unused, 2M-aligned 2 MiB range."""
        self._next = (self._next + 511) & ~511
        pfn = self._next
        self._next += 512
        if self._next > self.layout.host_pages:
            raise MemoryError("the emulated host has no unused 2M range left")
        return pfn << 12

    @staticmethod
    def region_of(hpa: int) -> int:
        """The 2M-aligned HPA of the region holding ``hpa`` (PAMT.ADD/REMOVE's operand)."""
        return hpa & ~((2 << 20) - 1)

    # --- calls ----------------------------------------------------------------------------------
    def seamcall(self, name: str, **operands) -> Status:
        """Issue SEAMCALL (or the guest's TDCALL) ``name`` with ABI-named operands."""
        if name not in OPERANDS:
            raise ValueError(f"unknown call {name!r}; known: {', '.join(OPERANDS)}")
        want = OPERANDS[name]
        unknown = set(operands) - set(want)
        if unknown:
            raise ValueError(f"{name} takes {', '.join(want) or 'no operands'}; "
                             f"not {', '.join(sorted(unknown))}")
        if name == "TDH.MNG.CREATE" and "td" not in operands:
            operands["td"] = self._next_td
        if name == "TDH.VP.CREATE" and "vcpu" not in operands:
            operands["vcpu"] = self._next_vcpu
        operands.setdefault("source", 0)
        operands.setdefault("pair0", -4096)
        operands.setdefault("pair1", -4096)
        missing = [k for k in want if k not in operands]
        if missing:
            raise ValueError(f"{name} needs {', '.join(missing)}")
        if "gpa" in operands and not 0 <= int(operands["gpa"]) < self.guest_bytes:
            # the real module takes any GPA below the TD's GPAW; emu models the TD's memory
            raise ValueError(f"{name}: gpa {int(operands['gpa']):#x} is outside the TD's "
                             f"memory (0 to {self.guest_bytes:#x})")
        args = np.zeros(8, np.int64)
        for i, k in enumerate(want):
            v = int(operands[k])
            args[i] = v >> 12 if k in ADDRESSES else v
        call = A.CALL_NAMES.index(name)
        self.V.out[:] = 0
        status = int(_call(self.S, self.V, call, args))
        if status == 0 and name == "TDH.MNG.CREATE":
            self._next_td = max(self._next_td, int(operands["td"]) + 1)
        if status == 0 and name == "TDH.VP.CREATE":
            self._next_vcpu = max(self._next_vcpu, int(operands["vcpu"]) + 1)
        out = {}
        if status == 0:
            for reg in OUTPUTS.get(name, ()):
                v = int(self.V.out[_REG[reg]])
                out[reg] = v << 12 if reg in ("rdx", "r8", "r12", "r13") else v
        return Status(name, A.unsigned(status), A.status_name(status), out)

    def td_exit(self, tdvpr: int) -> None:
        """The vCPU whose TDVPR is ``tdvpr`` leaves the TD (ends its TDH.VP.ENTER)."""
        _td_exit(self.S, self.V, tdvpr >> 12)

    # --- inspection -----------------------------------------------------------------------------
    def sept_state(self, td: int, gpa: int, level: int = 0) -> str:
        """The S-EPT entry state covering ``gpa`` at ``level`` ("FREE", "PENDING", ...)."""
        g = int(self.S.vm_gfn_base[td]) + (gpa >> 12)
        if level == 0:
            s = int(self.V.sept4k[g])
        elif level == 1:
            s = int(self.V.sept2m[g >> 9])
        else:
            s = int(self.V.sept1g[g >> 18])
        return A.SEPT_STATE_NAMES.get(s, hex(s))

    def page_type(self, hpa: int) -> str:
        """The PAMT page type of the 4K frame at ``hpa`` ("NDA", "REG", "EPT", ...)."""
        return A.PAGE_TYPE_NAMES[int(self.V.pamt4k[hpa >> 12]) & T.PT_MASK]

    def page_count(self, hpa: int) -> int:
        """Dynamic PAMT's page count of the 2M region holding ``hpa``."""
        return int(self.V.pamt2m_count[hpa >> 21])

    def calls(self) -> dict:
        """How many times each call ran."""
        return {n: int(self.S.fw_count[i]) for i, n in enumerate(A.CALL_NAMES)
                if self.S.fw_count[i]}
