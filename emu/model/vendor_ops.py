"""The ``kvm_x86_ops``-like points a vendor fills, as jitted generic functions.

Each function below is a *stub*: the TDP MMU and the other core kernels call it, and numba picks
the implementation by the type of the vendor state ``V`` (a ``namedtuple`` class unique to each
vendor) at compile time. A vendor supplies implementations through the ``kernels`` mapping of its
:class:`emu.records.Vendor` record; :func:`register_vendor_kernels` turns them into numba
overloads. Points a vendor leaves out get the neutral default written here, which is what an
ordinary (non-confidential) VM on EPT does. Nothing is dispatched at run time: each call compiles
to a direct call that LLVM inlines.

Every point receives ``V`` (the vendor's arrays), ``S`` (the core state, ``emu.model.state``) and
``ctx`` (the execution context doing the work, whose clock the vendor advances with
``emu.model.clock.charge``). Return values that are ``int`` statuses use 0 for success.

The points, in the order the TDP MMU meets them (the names follow KVM's; see
``reference/tdx.md`` §3–§4 and ``reference/snp.md`` §4):

``host_init(V, S, ctx) -> None``
    Once, before the first operation: reserve static metadata (TDX: static PAMT or the Dynamic
    PAMT bitmap; SNP: the RMP table) by giving frames to ``consts.OWN_STATIC_META``.
``vm_init(V, S, ctx, vm) -> int``
    The VM is being created (TDX: TDR/TDCS control pages; SNP: the guest context page).
``vm_pre_destroy(V, S, ctx, vm) -> None``
    Teardown: every leaf of the VM has been zapped, its page tables not yet freed (TDX frees the
    HKID here, after which S-EPT and control pages can be reclaimed).
``vm_destroy(V, S, ctx, vm) -> None``
    Every mapping and backing page of the VM is gone; reclaim what the vendor holds.
``vcpu_init(V, S, ctx, vm, vcpu) -> int`` / ``vcpu_destroy(V, S, ctx, vm, vcpu) -> None``
    A vCPU is created (TDX: TDVPR/TDCX; SNP: the VMSA) or destroyed.
``vcpu_exit(V, S, ctx, vm, vcpu) -> None`` / ``vcpu_enter(V, S, ctx, vm, vcpu) -> None``
    The vCPU left the guest for the host (an EPT violation or another exit KVM handles) and
    entered it again afterwards (TDX counts vCPUs per TLB epoch at entry and exit).
``topup(V, S, ctx, vm, vcpu) -> None``
    Called before ``mmu_lock`` is taken, where sleeping is allowed: on a fault, fill the
    vendor's per-vCPU caches (``topup_external_cache``); with ``vcpu`` -1, on the vCPU-less paths
    that may split (conversion, hole punch, host folio split), fill the per-VM caches.
``alloc_external_spt(V, S, ctx, vm, vcpu, level, site) -> int``
    A vendor that mirrors page tables (``external_spt``) supplies the page for the external
    table whose entries map ``level``-sized pages, under ``mmu_lock``: from a cache it topped up,
    or by allocating (an error in atomic context). Returns the frame, or -1.
``release_external_spt(V, S, ctx, vm, pt_pfn) -> None``
    An external table page from ``alloc_external_spt`` was never linked (the link or split
    failed): take it back. The default frees it.
``gmem_prepare(V, S, ctx, vm, gfn, pfn, order) -> int``
    guest_memfd hands out a folio of ``order`` for the first time (``kvm_arch_gmem_prepare``).
``gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages) -> None``
    guest_memfd frees ``npages`` frames starting at ``pfn`` (``kvm_arch_gmem_invalidate``).
``gmem_max_mapping_level(V, S, vm, gfn, pfn) -> int``
    The largest level the vendor allows for this private page (``gmem_max_mapping_level``).
``phys_prepare(V, S, ctx, vm, vcpu, pfn, level) -> int``
    Called by the TDP MMU with the vCPU at hand before ``link_external_spt``/``set_external_spte``
    hand ``pfn`` to the firmware (the RFC's ``kvm_x86_ops::phys_prepare``). ``vcpu`` is -1 on
    paths without one.
``phys_cleanup(V, S, ctx, vm, vcpu, pfn, level) -> None``
    The counterpart after the firmware gave ``pfn`` back, or after a failed hand-over.
``link_external_spt(V, S, ctx, vm, vcpu, gfn, level, pt_pfn) -> int``
    A new page table whose entries map ``level``-sized pages was linked at ``gfn``.
``set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn) -> int``
    A leaf mapping ``gfn`` -> ``pfn`` at ``level`` was installed.
``remove_external_spte(V, S, ctx, vm, gfn, level, pfn) -> int``
    A leaf is being zapped (TDX: BLOCK, TRACK, kick, PAGE.REMOVE).
``free_external_spt(V, S, ctx, vm, gfn, level, pt_pfn) -> None``
    KVM's page table ``pt_pfn`` mapping ``level`` entries at ``gfn`` is being freed; the vendor
    frees its mirror of it (called synchronously, before KVM's RCU free).
``split_external_spte(V, S, ctx, vm, vcpu, gfn, level, pt_pfn, cause) -> int``
    A huge leaf at ``level`` is about to become 512 leaves one level down (TDX: DEMOTE, with
    ``pt_pfn`` the new external page table; -1 for vendors without external page tables).
    Non-zero refuses the split.
``merge_external_spte(V, S, ctx, vm, gfn, level, cause) -> int``
    512 leaves are about to become one leaf at ``level`` (TDX: PROMOTE). Non-zero refuses.
``page_state_change(V, S, ctx, vm, vcpu, gfn, count, to_shared) -> None``
    The guest asks for ``count`` pages from ``gfn`` to become shared (or private) before the
    VMM converts them (TDX: TDG.VP.VMCALL<MapGPA>; SNP: the GHCB page-state change, before
    which the guest rescinds validation). Runs on the guest's vCPU ``vcpu`` (``ctx``); not
    called for the implicit conversions KVM makes on a mismatching access.
``guest_accept(V, S, ctx, vm, vcpu, gfn, level) -> int``
    The guest accepts (TDX) or validates (SNP) at ``level``; returns a ``consts.ACCEPT_*`` code.
``build_add(V, S, ctx, vm, gfn, pfn) -> int``
    Build-time load of one 4K page of the initial image (TDX: PAGE.ADD; SNP: LAUNCH_UPDATE).
``check(V, S) -> int``
    Verify the vendor's own invariants (``--check``); return the number of violations found.
"""
from __future__ import annotations

import inspect

from numba.core import types
from numba.extending import overload

from emu.model import consts, host


def host_init(V, S, ctx):
    return None


def vm_init(V, S, ctx, vm):
    return 0


def vm_pre_destroy(V, S, ctx, vm):
    return None


def vm_destroy(V, S, ctx, vm):
    return None


def vcpu_init(V, S, ctx, vm, vcpu):
    return 0


def vcpu_destroy(V, S, ctx, vm, vcpu):
    return None


def vcpu_exit(V, S, ctx, vm, vcpu):
    return None


def vcpu_enter(V, S, ctx, vm, vcpu):
    return None


def topup(V, S, ctx, vm, vcpu):
    return None


def alloc_external_spt(V, S, ctx, vm, vcpu, level, site):
    return -1


def release_external_spt(V, S, ctx, vm, pt_pfn):
    host.free_frames_one(S, ctx, vm, pt_pfn)


def gmem_prepare(V, S, ctx, vm, gfn, pfn, order):
    return 0


def gmem_invalidate(V, S, ctx, vm, gfn, pfn, npages):
    return None


def gmem_max_mapping_level(V, S, vm, gfn, pfn):
    return consts.LVL_1G


def phys_prepare(V, S, ctx, vm, vcpu, pfn, level):
    return 0


def phys_cleanup(V, S, ctx, vm, vcpu, pfn, level):
    return None


def link_external_spt(V, S, ctx, vm, vcpu, gfn, level, pt_pfn):
    return 0


def set_external_spte(V, S, ctx, vm, vcpu, gfn, level, pfn):
    return 0


def remove_external_spte(V, S, ctx, vm, gfn, level, pfn):
    return 0


def free_external_spt(V, S, ctx, vm, gfn, level, pt_pfn):
    return None


def split_external_spte(V, S, ctx, vm, vcpu, gfn, level, pt_pfn, cause):
    return 0


def merge_external_spte(V, S, ctx, vm, gfn, level, cause):
    return 0


def page_state_change(V, S, ctx, vm, vcpu, gfn, count, to_shared):
    return None


def guest_accept(V, S, ctx, vm, vcpu, gfn, level):
    return consts.ACCEPT_UNSUPPORTED


def build_add(V, S, ctx, vm, gfn, pfn):
    return 0


def check(V, S):
    return 0


#: point name -> the neutral default (also the stub the core calls)
POINTS = {
    f.__name__: f
    for f in (
        host_init, vm_init, vm_pre_destroy, vm_destroy, vcpu_init, vcpu_destroy, vcpu_exit,
        vcpu_enter, topup, alloc_external_spt, release_external_spt, gmem_prepare,
        gmem_invalidate, gmem_max_mapping_level, phys_prepare, phys_cleanup, link_external_spt,
        set_external_spte, remove_external_spte, free_external_spt, split_external_spte,
        merge_external_spte, page_state_change, guest_accept, build_add, check,
    )
}


def point_signature(name: str) -> tuple[str, ...]:
    """The parameter names a kernel for point ``name`` must take, in order."""
    return tuple(inspect.signature(POINTS[name]).parameters)


def kernel_problems(kernels) -> list[str]:
    """Why a vendor's ``kernels`` mapping does not fit the points (empty when it fits)."""
    problems = []
    for name, fn in kernels.items():
        if name not in POINTS:
            problems.append(f"kernel {name!r} is not a point (points: {', '.join(POINTS)})")
            continue
        py = getattr(fn, "py_func", fn)
        if not callable(py):
            problems.append(f"kernel {name!r} is not a function")
            continue
        want = point_signature(name)
        got = tuple(inspect.signature(py).parameters)
        if got != want:
            problems.append(
                f"kernel {name!r} takes ({', '.join(got)}) but the point passes ({', '.join(want)})"
            )
    return problems


_registered: dict[type, dict] = {}
_installed_defaults = False


def _install_defaults() -> None:
    """Make every stub callable from jitted code, falling back to its neutral default."""
    global _installed_defaults
    if _installed_defaults:
        return
    _installed_defaults = True
    for name, stub in POINTS.items():
        _install(name, stub)


def _install(name, stub):
    def choose(V):
        impls = None
        if isinstance(V, types.BaseNamedTuple):
            impls = _registered.get(V.instance_class)
        if impls is not None and name in impls:
            return impls[name]
        return _DEFAULT_IMPLS[name]

    # numba wants the typing function to have the stub's exact parameters; build it from them
    params = ", ".join(point_signature(name))
    namespace = {"choose": choose}
    exec(f"def dispatch_{name}({params}):\n    return choose(V)\n", namespace)
    # LLVM inlines the chosen implementation (numba's IR-level inlining miscompiled; emu.jit)
    overload(stub, prefer_literal=False,
             jit_options={"_nrt": False, "forceinline": True})(namespace[f"dispatch_{name}"])


def _copy_default(fn):
    """A fresh function object with the stub's code, so numba compiles it rather than recursing."""
    import types as pytypes

    return pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_default",
                                fn.__defaults__, fn.__closure__)


_DEFAULT_IMPLS = {name: _copy_default(fn) for name, fn in POINTS.items()}


def register_vendor_kernels(state_cls: type, kernels) -> None:
    """Bind ``kernels`` (point name -> Python function) to vendor state class ``state_cls``."""
    _install_defaults()
    impls = {}
    for name, fn in kernels.items():
        impls[name] = getattr(fn, "py_func", fn)
    _registered[state_cls] = impls
    from numba.core import config

    if config.DISABLE_JIT:
        # interpreted runs (the benchmark's reference) dispatch in Python instead
        for point in POINTS:
            globals()[point] = _python_dispatcher(point)


def _python_dispatcher(point):
    default = _DEFAULT_IMPLS[point]

    def dispatch(V, *args):
        impl = _registered.get(type(V), {}).get(point, default)
        return impl(V, *args)

    return dispatch
