"""The core's cost table: virtual nanoseconds for the vendor-neutral primitives.

None of these numbers is given by ``reference/`` (which measures firmware calls, not KVM's own
steps), so each is an *estimate*, chosen from common knowledge of current x86 servers and
explained here; every one can be overridden (``--cost NAME=NS``) and a vendor may override any
of them in its own table (a TD exit costs more than a plain VM exit, for instance).
"""
from emu.model import state as st
from emu.records import Cost

CORE_COSTS = (
    Cost("exit", 1200, "VM exit + re-entry round trip on an EPT violation; ~1-1.5k cycles of "
         "hardware transition plus KVM's exit dispatch at ~3 GHz", estimate=True),
    Cost("fault", 1000, "KVM's TDP fault handling in software (kvm_mmu_page_fault to "
         "kvm_tdp_mmu_map), excluding allocation and zeroing", estimate=True),
    Cost("spte", 20, "writing one SPTE with its bookkeeping", estimate=True),
    Cost("alloc_4k", 200, "one page from the page allocator's per-cpu lists", estimate=True),
    Cost("alloc_2m", 2000, "one order-9 allocation from a free 2M block (no compaction)",
         estimate=True),
    Cost("zero_4k", 300, "clearing 4 KiB at ~13 GB/s", estimate=True),
    Cost("zero_2m", 100000, "clearing 2 MiB (clear_huge_page) at ~20 GB/s", estimate=True),
    Cost("free", 150, "returning a page or folio to the allocator", estimate=True),
    Cost("tlb_flush", 2000, "issuing a remote TLB flush for a VM (INVEPT plus request setup)",
         estimate=True),
    Cost("kick", 1000, "kicking one running vCPU out of guest mode with an IPI", estimate=True),
    Cost("lock", 20, "an uncontended lock acquisition (one atomic)", estimate=True),
    Cost("access", 0, "a guest access that hits a mapping: guest time, which emu does not "
         "model; set it to give guests a pace", estimate=True),
    Cost("ioctl", 1000, "a VMM ioctl into KVM (syscall entry, fd lookup, dispatch)",
         estimate=True),
    Cost("vm_create", 50000, "KVM_CREATE_VM without vendor work", estimate=True),
    Cost("vcpu_create", 20000, "KVM_CREATE_VCPU without vendor work", estimate=True),
    Cost("copy_4k", 500, "copying 4 KiB (build-time image load, khugepaged collapse)",
         estimate=True),
    Cost("rcu_free", 100, "freeing a page-table page from an RCU callback", estimate=True),
    Cost("attr_page", 50, "updating one page's memory attribute (xarray store)", estimate=True),
)

assert len(CORE_COSTS) == st.CORE_COSTS
