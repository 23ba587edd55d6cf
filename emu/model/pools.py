"""Memory caches modelled on ``struct kvm_mmu_memory_cache``.

KVM cannot allocate while it holds ``mmu_lock`` (a spinning rwlock), so before taking it the
fault path *tops up* its caches: when a cache holds fewer than ``min`` objects it is filled to
``capacity`` (``__kvm_mmu_topup_memory_cache``: capacity KVM_ARCH_NR_OBJS_PER_MEMORY_CACHE = 40,
minimum PT64_ROOT_MAX_LEVEL = 5 for the page-table cache). Under the lock, pages are *consumed*.
A consume from an empty cache is a bug KVM warns about; here it is an ``ERR_POOL_EMPTY`` event
followed by a direct allocation, which is itself an atomic-context allocation error when the
context holds a spinlock. Cached pages are real host frames owned by the pool, so memory a
design keeps in caches shows up in the owner totals.
"""
from emu.jit import kernel
from emu.model import clock, host
from emu.model import consts as C
from emu.model import state as st


@kernel
def instance(S, pool, vm, vcpu):
    """Which instance of ``pool`` serves this VM / vCPU (by the pool's declared scope)."""
    scope = S.pool_scope[pool]
    if scope == st.SCOPE_VCPU:
        return vcpu
    if scope == st.SCOPE_VM:
        return vm
    return 0


@kernel
def topup(S, ctx, vm, pool, inst, minimum):
    """Fill ``pool[inst]`` to capacity if it holds fewer than ``minimum`` pages.

    ``minimum`` < 0 uses the pool's declared minimum. Returns the pages added, or -1 when the
    host ran out of memory before the pool reached ``minimum``: the pool keeps what it got,
    and a fill that reached the minimum is a success, as in KVM (``-ENOMEM`` only when
    ``nobjs < min``), whose callers then fail before taking ``mmu_lock``.
    """
    if minimum < 0:
        minimum = S.pool_min[pool]
    if S.pool_count[pool, inst] >= minimum:
        return 0
    return _fill(S, ctx, vm, pool, inst, minimum)


@kernel(cold=True)
def _fill(S, ctx, vm, pool, inst, minimum):
    n = S.pool_count[pool, inst]
    before = n
    cap = S.pool_cap[pool]
    owner = S.pool_owner[pool]
    while n < cap:
        pfn = host.alloc_4k(S, ctx, vm, owner, C.SITE_POOL_TOPUP)
        if pfn < 0:
            break
        S.pool_pfns[pool, inst, n] = pfn
        n += 1
    filled(S, ctx, vm, pool, inst, before, n)
    if n < minimum:
        return -1
    return n - before


@kernel(cold=True)
def filled(S, ctx, vm, pool, inst, before, n):
    """Record that ``pool[inst]`` went from ``before`` to ``n`` pages in one top-up."""
    S.pool_count[pool, inst] = n
    if n <= before:
        return
    S.pool_topups[pool] += 1
    held = 0
    for i in range(S.pool_count.shape[1]):
        held += S.pool_count[pool, i]
    if held > S.pool_peak[pool]:
        S.pool_peak[pool] = held
    clock.emit(S, C.POINT_POOL_TOPUP, ctx, vm, -1, pool, before, n, 0, 0, 0)


@kernel
def take(S, ctx, vm, pool, inst, owner, site):
    """Consume one page of ``pool[inst]`` for ``owner``; allocate directly if it is empty."""
    n = S.pool_count[pool, inst]
    S.pool_taken[pool] += 1
    if n == 0:
        S.pool_empty[pool] += 1
        clock.error(S, ctx, vm, C.ERR_POOL_EMPTY, pool, site)
        return host.alloc_4k(S, ctx, vm, owner, site)
    n -= 1
    pfn = S.pool_pfns[pool, inst, n]
    S.pool_pfns[pool, inst, n] = -1
    S.pool_count[pool, inst] = n
    host.set_owner(S, pfn, 1, owner)
    clock.emit(S, C.POINT_POOL_CONSUME, ctx, vm, -1, pool, n, 0, 0, 0, 0)
    return pfn


@kernel(cold=True)
def drain(S, ctx, vm, pool, inst):
    """Free every page cached in ``pool[inst]`` (``kvm_mmu_free_memory_cache``)."""
    n = S.pool_count[pool, inst]
    for i in range(n):
        host.free_frames(S, ctx, vm, S.pool_pfns[pool, inst, i], 1)
        S.pool_pfns[pool, inst, i] = -1
    S.pool_count[pool, inst] = 0
    return n
