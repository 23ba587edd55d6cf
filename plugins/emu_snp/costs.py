"""What each RMP instruction and SEV firmware command costs, in virtual nanoseconds, and where
the number comes from.

``reference/snp.md`` §5 and §8.5: no public per-instruction latency exists for RMPUPDATE,
PSMASH, PVALIDATE or a page-state change on any AMD part. What is measured:

* RMPOPT (verify), which reads the 512 2M entries of a 1 GB region, takes 2,000-5,000 cycles
  typically ([RMPOPT], Ashish Kalra, 2026). That prices a pass over 512 RMP entries, which is
  what PSMASH and a 2M RMPUPDATE write.
* Accepting 64 GiB at 4K took about 57 s on a 64-VP SNP VM ([OHCL] PR #50/#85), about 3.4 µs
  per 4K page if one CPU did it, mapping overhead of the paravisor included: an upper bound for
  a 4K PVALIDATE. At 2M it took under 1 s.
* QEMU's SNP launch finish took 3.18 s in [CVM]'s boot trace (EPYC 9334, image size not
  stated): an upper bound for the launch of a typical firmware image.

Every number below is therefore an estimate, derived as stated (cycles at 2.5 GHz, the TDX
plugin's clock too), marked so in the report, and overridable with ``--cost NAME=NS``.
"""
from emu.records import Cost

CYCLES_PER_NS = 2.5
_RMPOPT = "snp.md §5: RMPOPT reads 512 RMP entries in 2,000-5,000 cycles [RMPOPT]"


def _cycles(n: int) -> int:
    return int(round(n / CYCLES_PER_NS))


COSTS = (
    Cost("snp:RMPUPDATE", _cycles(1500), "estimate: a microcoded read-modify-write of one "
         "16-byte entry with the 2M entry's checks; the entry access is cheap next to the fixed "
         f"cost ({_RMPOPT}): ~1,500 cycles", estimate=True),
    Cost("snp:RMPUPDATE(2M)", _cycles(5000), f"estimate: writes the 512 entries of a 2M page; "
         f"{_RMPOPT}: the top of that range", estimate=True),
    Cost("snp:PSMASH", _cycles(5000), f"estimate: writes 512 4K entries from the 2M one; "
         f"{_RMPOPT}: the top of that range", estimate=True),
    Cost("snp:PVALIDATE", _cycles(1500), "estimate: like RMPUPDATE, one entry; [OHCL]'s 57 s "
         "for 16.8M 4K pages (3.4 µs each, snp.md §5) is an upper bound including the "
         "paravisor's mapping work", estimate=True),
    Cost("snp:PVALIDATE(2M)", _cycles(2000), "estimate: one 2M entry plus its range check; "
         "[OHCL]'s 57 s -> <1 s at 2M (snp.md §5) puts it far below 512 4K validations",
         estimate=True),
    Cost("snp:RMPADJUST", _cycles(1500), "estimate: like PVALIDATE, one entry", estimate=True),
    Cost("snp:RMPREAD", _cycles(250), f"estimate: reads one entry; {_RMPOPT}, ~5-10 cycles per "
         "entry plus the instruction's fixed cost", estimate=True),
    Cost("snp:SNP_GCTX_CREATE", 50000, "estimate: a PSP mailbox command (tens of µs round trip "
         "through sev_cmd_mutex and the PSP)", estimate=True),
    Cost("snp:SNP_LAUNCH_START", 50000, "estimate: a PSP mailbox command", estimate=True),
    Cost("snp:SNP_ACTIVATE", 50000, "estimate: a PSP mailbox command binding the ASID",
         estimate=True),
    Cost("snp:SNP_LAUNCH_UPDATE", 60000, "estimate: a PSP mailbox command with SHA-384 and AES "
         "over 4 KiB on the PSP's low-clocked core; [CVM]'s 3.18 s launch finish (snp.md §5) "
         "bounds a whole image's launch", estimate=True),
    Cost("snp:SNP_LAUNCH_FINISH", 1000000, "estimate: finalises the launch digest and checks "
         "the ID block (signature verification on the PSP), about a millisecond",
         estimate=True),
    Cost("snp:SNP_DECOMMISSION", 50000, "estimate: a PSP mailbox command", estimate=True),
    Cost("snp:SNP_PAGE_RECLAIM", 20000, "estimate: a PSP mailbox command changing one entry",
         estimate=True),
    Cost("snp:SNP_PAGE_UNSMASH", 50000, "estimate: a PSP mailbox command checking 512 entries",
         estimate=True),
    Cost("snp:clflush_4k", 300, "estimate: clflush_cache_range over 4 KiB, 64 lines at ~5 ns "
         "each, pipelined (sev_gmem_invalidate, snp.md §4.2)", estimate=True),
    Cost("snp:clflush_2m", 512 * 300, "estimate: 512 x snp:clflush_4k", estimate=True),
    Cost("snp:psc_request", 500, "estimate: KVM's GHCB page-state-change handling per VMGEXIT "
         "(snp_begin_psc: reading and merging up to 253 entries), beyond the exit itself",
         estimate=True),
    Cost("snp:psc_userspace_exit", 5000, "estimate: a KVM_EXIT_HYPERCALL (KVM_HC_MAP_GPA_RANGE) "
         "round trip to the VMM and back into KVM_RUN, the VMM's own work excluded",
         estimate=True),
    Cost("snp:direct_map_split", 20000, "estimate: set_memory_4k splitting one large "
         "direct-map page: a page-table page filled with 512 entries and a global TLB flush "
         "(IPIs to every CPU)", estimate=True),
)
