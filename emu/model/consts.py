"""Numbers every jitted kernel agrees on: levels, owners, operation kinds, contexts, sites, points.

Everything here is a plain module-level ``int`` so numba folds it into the generated machine code
as a constant. Vendors extend the tables that are open (locks, pools, allocation sites, probe
points, costs, counters) by declaring their own entries in their :class:`emu.records.Vendor`
record; a vendor's entry *k* gets the id ``CORE_<TABLE> + k`` (see ``emu.records``), which is also
a compile-time constant in the vendor's kernels.
"""

# --- page levels (KVM's PG_LEVEL_* minus one, which is also the TDX module's numbering) --------
LVL_4K = 0
LVL_2M = 1
LVL_1G = 2
LEVEL_NAMES = ("4K", "2M", "1G")
PAGES_PER_LEVEL = (1, 512, 262144)
SHIFT_PER_LEVEL = (0, 9, 18)

# --- owners of host 4K frames: every frame has exactly one -------------------------------------
OWN_FREE = 0
OWN_HOST = 1            # the host kernel and everything emu does not model
OWN_STATIC_META = 2     # firmware metadata reserved at boot (static PAMT, the RMP table)
OWN_GUEST_PRIVATE = 3   # guest_memfd folios holding private guest memory
OWN_GUEST_SHARED = 4    # VMM memory holding shared guest memory (all memory of a plain VM)
OWN_KVM_PT = 5          # KVM's own TDP page-table pages
OWN_KVM_POOL = 6        # pages sitting in a kvm_mmu_memory_cache, not yet consumed
OWN_FW_CONTROL = 7      # firmware control pages (TDR, TDCS, TDVPR, VMSA, ...)
OWN_FW_PT = 8           # firmware-owned page-table pages (Secure EPT)
OWN_FW_META = 9         # dynamic firmware metadata (Dynamic PAMT page pairs)
OWN_VENDOR_POOL = 10    # pages a vendor holds in its own pools
OWN_LEAKED = 11         # pages that could not be given back (failed reclaim)
N_OWNERS = 12
OWNER_NAMES = (
    "free", "host", "static_metadata", "guest_private", "guest_shared", "kvm_page_table",
    "kvm_pool", "fw_control", "fw_page_table", "fw_metadata", "vendor_pool", "leaked",
)

# --- operation kinds (the workload vocabulary) ---------------------------------------------------
OP_NOP = 0
OP_VM_CREATE = 1        # vm
OP_VM_DESTROY = 2       # vm
OP_VCPU_CREATE = 3      # vm, vcpu
OP_BUILD_ADD = 4        # vm, gfn, count: build-time load of the initial image
OP_ACCESS = 5           # vm, vcpu, gfn; flags: F_SHARED, F_WRITE
OP_ACCEPT = 6           # vm, vcpu, gfn, level: guest accept / validate at that level
OP_CONVERT = 7          # vm, gfn, count; flags: F_SHARED (to shared) or 0 (to private)
OP_PUNCH = 8            # vm, gfn, count: guest_memfd hole punch
OP_FOLIO_SPLIT = 9      # vm, gfn: the host splits the huge folio backing gfn into 4K folios
OP_FOLIO_COLLAPSE = 10  # vm, gfn: khugepaged collapses the 2M range at gfn into one folio
OP_IDLE = 11            # vm, arg = nanoseconds during which the VM's vCPUs run without exits
OP_RECOVER = 12         # vm, gfn, count: KVM huge-page recovery over the range
N_OPS = 13
OP_NAMES = (
    "nop", "vm_create", "vm_destroy", "vcpu_create", "build_add", "access", "accept", "convert",
    "punch", "folio_split", "folio_collapse", "idle", "recover",
)
# operations that a guest performs (the denominator of "ns per guest operation")
GUEST_OPS = (OP_ACCESS, OP_ACCEPT)

# operation flags
F_SHARED = 1
F_WRITE = 2

# --- guest memory backings -------------------------------------------------------------------------
BACK_4K = 0
BACK_THP = 1
BACK_HUGETLB_2M = 2
BACK_HUGETLB_1G = 3
BACKING_NAMES = ("4k", "thp", "hugetlb-2m", "hugetlb-1g")

# --- execution contexts ------------------------------------------------------------------------------
CTX_VCPU = 0
CTX_VMM = 1             # the VMM's ioctl thread (one per VM)
CTX_NOTIFIER = 2        # an MMU-notifier / guest_memfd invalidation (one per VM)
CTX_RCU = 3             # RCU callbacks (one, global)
CTX_KHUGEPAGED = 4      # khugepaged (one, global)
CONTEXT_KIND_NAMES = ("vcpu", "vmm", "mmu_notifier", "rcu_callback", "khugepaged")
# may a context of this kind sleep when it holds no spinlock?  RCU callbacks run in softirq.
CONTEXT_MAY_SLEEP = (1, 1, 1, 0, 1)

# --- locks (core entries; vendor lock k is CORE_LOCKS + k) ------------------------------------------
LOCK_MMU = 0            # kvm->mmu_lock, a rwlock, one per VM
CORE_LOCKS = 1
CORE_LOCK_NAMES = ("mmu_lock",)
CORE_LOCK_SCOPES = ("vm",)

# --- pools (kvm_mmu_memory_cache; vendor pool k is CORE_POOLS + k) ---------------------------------
POOL_SHADOW_PAGE = 0    # vcpu->arch.mmu_shadow_page_cache: TDP page-table pages
POOL_SPLIT = 1          # kvm->arch.split_page_cache: page-table pages for splits without a vCPU
CORE_POOLS = 2
CORE_POOL_NAMES = ("mmu_shadow_page_cache", "split_page_cache")
CORE_POOL_SCOPES = ("vcpu", "vm")
# KVM_ARCH_NR_OBJS_PER_MEMORY_CACHE = 40; top-up when fewer than PT64_ROOT_MAX_LEVEL = 5 are held.
# The split cache needs a page table for each of the two huge leaves a range can cross at its
# ends, hence 4. The cache of external (mirrored) page tables, vcpu->arch.mmu_external_spt_cache,
# belongs to the vendor that mirrors tables: it decides where those pages come from
# (``vendor_ops.alloc_external_spt``), which is what the TDX allocation policies differ in.
CORE_POOL_CAPACITY = (40, 40)
CORE_POOL_MIN = (5, 4)

# --- allocation call sites (vendor site k is CORE_SITES + k) -----------------------------------------
SITE_PT_PAGE = 0        # a TDP page-table page taken in the fault path
SITE_SPLIT_PT = 1       # a page-table page for a huge-page split
SITE_GMEM_FOLIO = 2     # a guest_memfd folio
SITE_SHARED_FOLIO = 3   # a VMM (shared) folio
SITE_POOL_TOPUP = 4     # filling a kvm_mmu_memory_cache
SITE_ROOT = 5           # a VM's TDP root
CORE_SITES = 6
CORE_SITE_NAMES = (
    "kvm_tdp_mmu_map:pt_page", "tdp_mmu_split_huge_page:pt_page", "kvm_gmem_get_folio",
    "vmm:shared_folio", "kvm_mmu_topup_memory_cache", "kvm_tdp_mmu_get_vcpu_root",
)

# --- split and merge causes --------------------------------------------------------------------------
CAUSE_GUEST_ACCEPT = 0  # the guest accepted / validated at a smaller level inside a huge mapping
CAUSE_CONVERT = 1       # a private<->shared conversion crossing the huge mapping
CAUSE_PUNCH = 2         # a guest_memfd hole punch crossing the huge mapping
CAUSE_FOLIO_SPLIT = 3   # the host split the backing folio
CAUSE_FAULT = 4         # a fault needed a smaller mapping (e.g. an RMP size mismatch)
CAUSE_RECOVERY = 5      # huge-page recovery (merges)
CAUSE_COLLAPSE = 6      # khugepaged collapse of the backing folio (merges)
N_CAUSES = 7
CAUSE_NAMES = (
    "guest_accept", "convert", "punch", "folio_split", "fault", "recovery", "collapse",
)

# --- errors ------------------------------------------------------------------------------------------
ERR_ATOMIC_ALLOC = 0    # an allocation attempted where sleeping is forbidden (a = site)
ERR_HOST_OOM = 1        # the host had no frame for an allocation (a = site)
ERR_FW_FAILURE = 2      # a firmware call failed unexpectedly (a = vendor call kind, b = status)
ERR_POOL_EMPTY = 3      # a pool was consumed while empty (a = pool)
ERR_GUEST = 4           # the guest saw an error (a = vendor-defined code)
ERR_VENDOR = 5          # a vendor-defined error (a, b vendor-defined)
N_ERRORS = 6
ERROR_NAMES = (
    "atomic_alloc", "host_oom", "firmware_failure", "pool_empty", "guest_error", "vendor_error",
)

# --- vendor answers to a guest accept ----------------------------------------------------------------
ACCEPT_OK = 0           # accepted
ACCEPT_EXIT_SPLIT = 1   # the host mapping is larger than the request: the host must split, retry
ACCEPT_ALREADY = 2      # already accepted (not an error)
ACCEPT_SIZE_MISMATCH = 3  # host mapping smaller than the request: the guest retries smaller
ACCEPT_NOT_MAPPED = 4   # nothing mapped yet: the host faults the page in, then the guest retries
ACCEPT_UNSUPPORTED = 5  # the vendor has no accept (plain VMs): counted as a plain access

# --- maximum sizes of the bounded arrays -------------------------------------------------------------
MAX_ERROR_RECORDS = 4096

# --- core probe point ids (the order of emu.builtin_points.CORE_POINTS; vendor point k is
# CORE_POINTS + k) ---------------------------------------------------------------------------------
POINT_OP = 0
POINT_FAULT = 1
POINT_MAP = 2
POINT_ZAP = 3
POINT_SPLIT = 4
POINT_MERGE = 5
POINT_PT_ALLOC = 6
POINT_PT_FREE = 7
POINT_ALLOC = 8
POINT_FREE = 9
POINT_POOL_TOPUP = 10
POINT_POOL_CONSUME = 11
POINT_LOCK = 12
POINT_ACCEPT = 13
POINT_GMEM_PREPARE = 14
POINT_GMEM_INVALIDATE = 15
POINT_ERROR = 16
CORE_POINTS = 17
