"""What each TDX firmware call costs, in virtual nanoseconds, and where the number comes from.

``reference/tdx.md`` §5 measures little per call: PAMT.ADD (avg 4 µs) and PAMT.REMOVE (avg
2 µs) are measured [Yan, V5 thread]; TDXplorer counts instructions for a few calls [TX Table 1],
which set relative weights. Every other number is an estimate, derived as stated, marked so in
the report, and overridable with ``--cost NAME=NS``. The instruction counts are turned into time
at 0.4 ns per instruction (one instruction per cycle at 2.5 GHz, the middle of the Xeon range
in [TX §7.4.3]), itself an estimate.
"""
from emu.records import Cost

from emu_tdx import state as T

NS_PER_INSTR = 0.4


def _instr(n: int) -> int:
    return int(round(n * NS_PER_INSTR))


_TX = "tdx.md §5: TDXplorer instruction count (TX Table 1) x 0.4 ns"

COSTS = (
    Cost("seamcall:TDH.MNG.CREATE", _instr(3518), f"{_TX}: MNG.CREATE 3518 instructions"),
    Cost("seamcall:TDH.MNG.ADDCX", 1500, "estimate: a page-type change plus a 4K clear, like "
         "MNG.CREATE less its key setup", estimate=True),
    Cost("seamcall:TDH.MNG.KEY.CONFIG", 5000, "estimate: programs the HKID on every package "
         "(PCONFIG), several µs", estimate=True),
    Cost("seamcall:TDH.MNG.INIT", 5000, "estimate: TD-wide initialisation and CPUID setup, of "
         "the order of TDH.VP.INIT", estimate=True),
    Cost("seamcall:TDH.VP.CREATE", 1500, "estimate: like MNG.ADDCX", estimate=True),
    Cost("seamcall:TDH.VP.ADDCX", 1500, "estimate: like MNG.ADDCX", estimate=True),
    Cost("seamcall:TDH.VP.INIT", _instr(4695), f"{_TX}: VP.INIT 4695 instructions"),
    Cost("seamcall:TDH.VP.ENTER", _instr(3357), f"{_TX}: VP.ENTER 3357 instructions"),
    Cost("seamcall:TDH.MEM.PAGE.ADD", 3000, "estimate: SEPT walk plus a 4K copy into the TD",
         estimate=True),
    Cost("seamcall:TDH.MR.EXTEND", 600, "estimate: SHA-384 over 256 bytes", estimate=True),
    Cost("seamcall:TDH.MR.FINALIZE", 2000, "estimate: finalises the measurement",
         estimate=True),
    Cost("seamcall:TDH.MEM.SEPT.ADD", _instr(6314), f"{_TX}: SEPT.ADD 6314 instructions"),
    Cost("seamcall:TDH.MEM.PAGE.AUG", _instr(6314), "estimate: the same S-EPT walk and PAMT "
         "update as SEPT.ADD (TX Table 1 x 0.4 ns)", estimate=True),
    Cost("seamcall:TDH.MEM.RANGE.BLOCK", 1500, "estimate: S-EPT walk and one entry update",
         estimate=True),
    Cost("seamcall:TDH.MEM.RANGE.UNBLOCK", 1500, "estimate: like RANGE.BLOCK", estimate=True),
    Cost("seamcall:TDH.MEM.TRACK", 1000, "estimate: an epoch increment under the epoch lock",
         estimate=True),
    Cost("seamcall:TDH.MEM.PAGE.REMOVE", 2000, "estimate: S-EPT walk, PAMT update",
         estimate=True),
    Cost("seamcall:TDH.MEM.SEPT.REMOVE", 2000, "estimate: like PAGE.REMOVE", estimate=True),
    Cost("seamcall:TDH.MEM.PAGE.DEMOTE", 12000, "estimate: fills 512 S-EPT entries and 512 "
         "PAMT entries (~20 ns each) on top of a SEPT.ADD", estimate=True),
    Cost("seamcall:TDH.MEM.PAGE.PROMOTE", 12000, "estimate: checks 512 entries, like DEMOTE",
         estimate=True),
    Cost("seamcall:TDH.PHYMEM.PAGE.RECLAIM", 2000, "estimate: PAMT update", estimate=True),
    Cost("seamcall:TDH.PHYMEM.PAGE.WBINVD", 1000, "estimate: write-back of one 4K page",
         estimate=True),
    Cost("seamcall:TDH.PHYMEM.PAMT.ADD", 4000, "tdx.md §5: measured avg 4 µs (2-18), Yan, V5 "
         "thread"),
    Cost("seamcall:TDH.PHYMEM.PAMT.REMOVE", 2000, "tdx.md §5: measured avg 2 µs (1-11), Yan, "
         "V5 thread"),
    Cost("seamcall:TDH.VP.FLUSH", 2000, "estimate", estimate=True),
    Cost("seamcall:TDH.MNG.VPFLUSHDONE", 1000, "estimate", estimate=True),
    Cost("seamcall:TDH.PHYMEM.CACHE.WB", 50000, "estimate: a whole-cache write-back, tens of µs",
         estimate=True),
    Cost("seamcall:TDH.MNG.KEY.FREEID", 1000, "estimate", estimate=True),
    Cost("seamcall:TDG.MEM.PAGE.ACCEPT", _instr(3767), f"{_TX}: TDG.MEM.PAGE.ACCEPT 3767 "
         "instructions (a 4K accept)"),
    Cost(T.ACCEPT_2M_COST, _instr(3767) + 511 * 250, "estimate: a 4K accept plus zeroing 511 "
         "more pages at ~250 ns each", estimate=True),
)
