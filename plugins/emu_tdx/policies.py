"""The Dynamic PAMT allocation policies (vendor option ``policy``): where each comes from in the
debate (``reference/seed-thread-dpamt-phys-prepare.txt``, ``reference/tdx.md`` §3.2, §4.3) and
what it claims. The mechanics are in ``emu_tdx.glue``; a policy is judged by what the run shows:
PAMT and cache memory at peak and after teardown, allocations in atomic context with their call
site, failed SEAMCALLs by status, SEAMCALLs by leaf, firmware time, ``pamt_lock`` waiting.
"""

POLICY_DOCS = {
    "running-vcpu": (
        "v2-v6 (Kirill, Rick; Yan's suggestion in the RFC thread): the TDX code finds the vCPU "
        "with kvm_get_running_vcpu() and draws pairs from its cache of 5 pairs (10 pages) "
        "topped up before the fault; paths without a vCPU (conversion, hole punch) use a per-VM "
        "cache of 4 pages per split. Claim: nothing is allocated under mmu_lock and nothing is "
        "kept once every TD is gone."),
    "vcpu-pool": (
        "The RFC's kvm_x86_ops phys_prepare()/phys_cleanup(), called by the TDP MMU before "
        "link_external_spt()/set_external_spte() with the vCPU at hand, drawing from a per-vCPU "
        "pool. Claim: the vCPU is explicit. Consequence to look for: split paths have no vCPU "
        "and allocate in atomic context."),
    "kmem-cache": (
        "Kai's idea: S-EPT pages come from a kmem_cache whose constructor installs the PAMT. "
        "Kirill's objections: a constructor cannot fail, and cached pages keep their PAMT, so "
        "PAMT is held with zero TDs (see after_teardown)."),
    "gmem-prepare": (
        "SEV style (kvm_arch_gmem_prepare): PAMT for every page of a folio when guest_memfd "
        "prepares it, outside mmu_lock (Sean liked that). Kai's objection: the folio's order "
        "can change before it is mapped; and a pair installed for a 2M folio forbids mapping it "
        "at 2M (sizes must match), so private memory maps at 4K."),
    "topup": (
        "Sean's proposal on HP3 19/24: install PAMT when the S-EPT page cache is topped up "
        "(tdx_alloc_control_page), outside mmu_lock; KVM then tracks PAMT only for data pages. "
        "Worst case he quoted: 40 pages per vCPU holding PAMT without being in use."),
    "lazy": (
        "The pre-RFC design: add a pair only after a SEAMCALL fails with "
        "MISSING_PAMT_PAGE_PAIR, remove it on the module's removal hint. Rejected because the "
        "pair is allocated where the failure happens (under mmu_lock) and PAMT.ADD/REMOVE race "
        "other SEAMCALLs without a global lock."),
}
