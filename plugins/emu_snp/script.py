"""Drive the RMP instruction by instruction from Python, with the same kernels the emulator runs.

    >>> from emu_snp.script import SnpMachine
    >>> m = SnpMachine(host="64MiB")
    >>> spa = m.huge_page()
    >>> m.issue("RMPUPDATE", spa=spa + 4096, gpa=0x1000, asid=1, assigned=1)     # one 4K page
    <RMPUPDATE: SUCCESS>
    >>> m.issue("RMPUPDATE", spa=spa, gpa=0, asid=1, assigned=1, pagesize="2M").name
    'FAIL_OVERLAP'
    >>> m.issue("RMPUPDATE", spa=spa + 4096, assigned=0).ok                      # back to shared
    True
    >>> m.issue("RMPUPDATE", spa=spa, gpa=0, asid=1, assigned=1, pagesize="2M").ok
    True
    >>> m.issue("PVALIDATE", asid=1, gpa=0x1000, spa=spa + 4096).name            # 4K on a 2M entry
    '#NPF(RMP|SIZEM)'
    >>> m.issue("PSMASH", spa=spa).ok, m.issue("PVALIDATE", asid=1, gpa=0x1000, spa=spa + 4096).ok
    (True, True)

Addresses are byte addresses, as in the ABI: SPAs of host frames (``page()`` hands out unused
4K frames, ``huge_page()`` unused 2M-aligned ranges), GPAs of the guest. Sizes are ``"4K"``,
``"2M"``, 0 or 1. A call returns a :class:`Status`: the code (an instruction's return code, the
#NPF error-code bits of an instruction that exited, or a SEV firmware status), its name and the
outputs it sets. Operands are named after the ABI (:data:`OPERANDS`, with their defaults in
:data:`DEFAULTS`): a guest instruction names the guest's ``asid``, the ``gpa`` and the ``spa``
its nested page table maps it to; the host's ``caller_asid`` is 0 unless given. The RMP's own
frames sit at the top of host memory in the Firmware state, as SNP init leaves them.
``lock(spa)`` stands for the firmware or another CPU holding an entry (``emu_snp.rmp``).

The first use compiles the kernels into emu's on-disk cache (about a minute); later sessions
load them in a fraction of a second.
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

from emu_snp import abi as A
from emu_snp import rmp as R
from emu_snp import state as T

#: the operands each call takes, in the order ``_call`` passes them
OPERANDS = {
    "RMPUPDATE": ("spa", "gpa", "asid", "assigned", "pagesize", "immutable", "caller_asid"),
    "PSMASH": ("spa", "caller_asid"),
    "PVALIDATE": ("asid", "gpa", "spa", "pagesize", "validate"),
    "RMPADJUST": ("asid", "vmpl", "gpa", "spa", "pagesize", "target_vmpl", "perms", "vmsa"),
    "RMPREAD": ("spa", "caller_asid"),
    "SNP_GCTX_CREATE": ("guest", "gctx"),
    "SNP_LAUNCH_START": ("gctx",),
    "SNP_ACTIVATE": ("gctx", "asid"),
    "SNP_LAUNCH_UPDATE": ("gctx", "spa", "gpa", "pagesize", "page_type"),
    "SNP_LAUNCH_FINISH": ("gctx",),
    "SNP_DECOMMISSION": ("gctx",),
    "SNP_PAGE_RECLAIM": ("spa", "pagesize"),
    "SNP_PAGE_UNSMASH": ("spa",),
}
#: operands that may be left out, and their values
DEFAULTS = {"gpa": 0, "asid": 0, "immutable": 0, "caller_asid": 0, "pagesize": 0, "validate": 1,
            "vmpl": 0, "vmsa": 0, "page_type": A.PAGE_NORMAL}
#: operands given in bytes (passed to the kernels as 4K frame numbers)
ADDRESSES = {"spa", "gpa", "gctx"}
#: outputs each call sets
OUTPUTS = {"RMPREAD": ("gpa", "assigned", "pagesize", "hpage_region_status", "immutable",
                       "asid")}


@njit(cache=True, _nrt=False)
def _call(S, V, call, a):
    """One call by its index in ``abi.CALL_NAMES`` with operands ``a`` (frame numbers)."""
    ctx = 0
    if call == A.FW_RMPUPDATE:
        return R.rmpupdate(V, S, ctx, -1, a[6], a[0], a[1], a[2], a[3], a[4], a[5])
    if call == A.FW_PSMASH:
        return R.psmash(V, S, ctx, -1, a[1], a[0])
    if call == A.FW_PVALIDATE:
        return R.pvalidate(V, S, ctx, -1, a[0], a[1], a[2], a[3], a[4])
    if call == A.FW_RMPADJUST:
        return R.rmpadjust(V, S, ctx, -1, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
    if call == A.FW_RMPREAD:
        return R.rmpread(V, S, ctx, a[1], a[0])
    if call == A.FW_GCTX_CREATE:
        return R.gctx_create(V, S, ctx, a[0], a[1])
    if call == A.FW_LAUNCH_START:
        return R.launch_start(V, S, ctx, a[0])
    if call == A.FW_ACTIVATE:
        return R.activate(V, S, ctx, a[0], a[1])
    if call == A.FW_LAUNCH_UPDATE:
        return R.launch_update(V, S, ctx, a[0], a[1], a[2], a[3], a[4])
    if call == A.FW_LAUNCH_FINISH:
        return R.launch_finish(V, S, ctx, a[0])
    if call == A.FW_DECOMMISSION:
        return R.decommission(V, S, ctx, a[0])
    if call == A.FW_RECLAIM:
        return R.page_reclaim(V, S, ctx, a[0], a[1])
    if call == A.FW_UNSMASH:
        return R.page_unsmash(V, S, ctx, a[0])
    return A.FAIL_INPUT


@dataclass
class Status:
    """What a call returned: the code, its name, and the outputs it set."""

    call: str
    code: int
    name: str
    out: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __repr__(self) -> str:
        outs = "".join(f" {k}=0x{v:x}" for k, v in self.out.items())
        return f"<{self.call}: {self.name}{outs}>"


def _size(value) -> int:
    if isinstance(value, str):
        if value.upper() not in ("4K", "2M"):
            raise ValueError(f"pagesize {value!r}: write '4K' or '2M'")
        return 0 if value.upper() == "4K" else 1
    return int(value)


class SnpMachine:
    """An SEV-SNP host of ``host`` bytes with its RMP, and ``guests`` guest slots."""

    def __init__(self, host="64MiB", guests=1, cache_dir=None, **options):
        import emu_snp
        from emu.engine.options import resolve_options
        from emu.engine.session import EMU_JIT_SOURCES
        from emu.engine.tables import build_tables, make_core_state

        host_pages = parse_size(str(host)) // 4096
        layout = Layout(host_pages=host_pages)
        for i in range(guests):
            layout.add_slot(f"guest{i}", 512, 1, C.BACK_4K)
        vendor = emu_snp.emu_vendors()[0]
        tables = build_tables(vendor, {})
        opts = resolve_options(vendor, {k: str(v) for k, v in options.items()})
        self.S = make_core_state(layout, tables, private_memory=True, exact_zap=False,
                                 external_spt=False, vendor_max_level=C.LVL_1G)
        self.V = emu_snp.make_state(layout, opts, tables)
        self.layout = layout
        # the RMP's own entries are Firmware pages (SNP init), at the top of host memory
        n = int(self.V.stat[T.ST_RMP_PAGES])
        self.rmp_first = max(0, host_pages - n)
        for pfn in range(self.rmp_first, host_pages):
            self.V.rmp_flags[pfn] = A.F_ASSIGNED | A.F_IMMUTABLE
            if pfn & 511:
                self.V.rmp_sub[pfn >> 9] += 1
        root = Path(cache_dir) if cache_dir else jit.default_cache_root()
        jit.activate_cache(root, [*EMU_JIT_SOURCES, Path(emu_snp.__file__).parent])
        self._next = 0
        self._next_guest = 0

    # --- host memory ------------------------------------------------------------------------------
    def page(self) -> int:
        """The SPA of an unused 4K host frame."""
        if self._next >= self.rmp_first:
            raise MemoryError("the emulated host has no unused frame left")
        pfn = self._next
        self._next += 1
        return pfn << 12

    def huge_page(self) -> int:
        """The SPA of an unused, 2M-aligned 2 MiB range."""
        self._next = (self._next + 511) & ~511
        pfn = self._next
        self._next += 512
        if self._next > self.rmp_first:
            raise MemoryError("the emulated host has no unused 2M range left")
        return pfn << 12

    def rmp_page(self) -> int:
        """The SPA of a frame holding the RMP itself."""
        return self.rmp_first << 12

    # --- calls ----------------------------------------------------------------------------------
    def issue(self, name: str, **operands) -> Status:
        """Issue instruction or firmware command ``name`` with ABI-named operands."""
        if name not in OPERANDS:
            raise ValueError(f"unknown call {name!r}; known: {', '.join(OPERANDS)}")
        want = OPERANDS[name]
        unknown = set(operands) - set(want)
        if unknown:
            raise ValueError(f"{name} takes {', '.join(want)}; not {', '.join(sorted(unknown))}")
        if name == "SNP_GCTX_CREATE" and "guest" not in operands:
            operands["guest"] = self._next_guest
        for k in want:
            if k not in operands and k in DEFAULTS:
                operands[k] = DEFAULTS[k]
        missing = [k for k in want if k not in operands]
        if missing:
            raise ValueError(f"{name} needs {', '.join(missing)}")
        args = np.zeros(8, np.int64)
        for i, k in enumerate(want):
            v = _size(operands[k]) if k == "pagesize" else int(operands[k])
            args[i] = v >> 12 if k in ADDRESSES else v
        call = A.CALL_NAMES.index(name)
        self.V.out[:] = 0
        code = int(_call(self.S, self.V, call, args))
        if code == 0 and name == "SNP_GCTX_CREATE":
            self._next_guest = max(self._next_guest, int(operands["guest"]) + 1)
        out = {}
        if code == 0:
            for i, reg in enumerate(OUTPUTS.get(name, ())):
                out[reg] = int(self.V.out[i])
        return Status(name, code, A.code_name(call, code), out)

    def lock(self, spa: int) -> None:
        """The firmware or another CPU holds the entry at ``spa`` (its lock bit)."""
        self.V.rmp_flags[spa >> 12] |= A.F_LOCK

    def unlock(self, spa: int) -> None:
        self.V.rmp_flags[spa >> 12] &= 0xFF ^ A.F_LOCK

    # --- inspection -----------------------------------------------------------------------------
    def entry(self, spa: int) -> dict:
        """The raw RMP entry of the frame at ``spa``, field by field."""
        pfn = spa >> 12
        f = int(self.V.rmp_flags[pfn])
        g = int(self.V.rmp_gpa[pfn])
        perm = int(self.V.rmp_perm[pfn])
        return {
            "assigned": bool(f & A.F_ASSIGNED), "pagesize": "2M" if f & A.F_2M else "4K",
            "immutable": bool(f & A.F_IMMUTABLE), "validated": bool(f & A.F_VALIDATED),
            "vmsa": bool(f & A.F_VMSA), "lock": bool(f & A.F_LOCK),
            "asid": int(self.V.rmp_asid[pfn]),
            "gpa": (A.VMSA_GFN if g == A.GFN_VMSA_STORED else g) << 12,
            "perms": [(perm >> (A.PERM_BITS * i)) & A.PERM_ALL for i in range(3)],
            "subpages": int(self.V.rmp_sub[pfn >> 9]) if (pfn & 511) == 0 else None,
        }

    def lookup(self, spa: int) -> tuple[bool, str]:
        """``snp_lookup_rmpentry``: assigned from the frame's own entry, the level from its 2M
        entry ([K-host])."""
        pfn = spa >> 12
        head = int(self.V.rmp_flags[pfn & ~511])
        big = (head & (A.F_ASSIGNED | A.F_2M)) == (A.F_ASSIGNED | A.F_2M)
        return bool(self.V.rmp_flags[pfn] & A.F_ASSIGNED), "2M" if big else "4K"

    def state(self, spa: int) -> str:
        """The page state of the page at ``spa`` ("HYPERVISOR", "GUEST_VALID", ...); a frame
        inside a 2M page has its 2M entry's state."""
        pfn = spa >> 12
        e = pfn & ~511 if self.lookup(spa)[1] == "2M" else pfn
        return A.STATE_NAMES[A.page_state(int(self.V.rmp_flags[e]), int(self.V.rmp_asid[e]))]

    def calls(self) -> dict:
        """How many times each call ran."""
        return {n: int(self.S.fw_count[i]) for i, n in enumerate(A.CALL_NAMES)
                if self.S.fw_count[i]}

    def merges(self) -> dict:
        """2M entries formed again, by cause (``reassign``, ``unsmash``)."""
        return {n: int(self.V.merge[i]) for i, n in enumerate(T.MERGE_NAMES)}
