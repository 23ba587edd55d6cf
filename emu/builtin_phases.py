"""The built-in workload phase kinds, declared through the same hook third-party plugins use.

Each kind is a :class:`emu.records.PhaseKind`: typed fields (:class:`emu.workload.FieldSpec`)
and a generator ``generate(fields, ctx)`` yielding ``OP_DTYPE`` arrays (see
:class:`emu.workload.GenContext`). Generators are vectorised with numpy and honour
``ctx.planning`` (do the VM bookkeeping, count operations, produce nothing) so that planning a
1 TiB workload costs milliseconds. When a phase targets several VMs their operation streams are
interleaved operation by operation: the VMs run at the same time, as they would on a real host.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from emu import hookimpl
from emu.model.consts import (F_SHARED, F_WRITE, LVL_2M, LVL_4K, OP_ACCEPT, OP_ACCESS, OP_BUILD_ADD,
                              OP_CONVERT, OP_FOLIO_COLLAPSE, OP_FOLIO_SPLIT, OP_IDLE, OP_PUNCH,
                              OP_RECOVER, OP_VM_DESTROY)
from emu.model.layout import PAGE_SIZE, PAGES_2M
from emu.records import PhaseKind
from emu.workload.accept import (accept_range, accept_range_count, accesses_with_lazy_accept,
                                 lazy_accept_estimate, mark_accepted, segments)
from emu.workload.fields import FieldSpec
from emu.workload.generate import GenContext, VmInstance, vm_create_ops
from emu.workload.ops import concat, interleave, ops, place_ranges
from emu.workload.sizes import format_size

MiB = 1 << 20

# ------------------------------------------------------------------------------------------------
# shared field specs
# ------------------------------------------------------------------------------------------------

_ACCEPT_LEVEL = FieldSpec(
    "level", "Page size the guest accepts at (TDG.MEM.PAGE.ACCEPT / PVALIDATE). 2M accepts whole "
    "aligned 2M regions in one call and 4K only the ragged edges; 4K models a guest (or firmware) "
    "that accepts page by page, which forces the host to split 2M mappings or map at 4K.",
    default="2M", choices=("4K", "2M"))
_IMAGE = FieldSpec(
    "size", "Size of the build-time image (firmware, kernel, initrd) loaded at gfn 0 before the guest "
    "runs, one page-add per 4K page (TDH.MEM.PAGE.ADD on TDX, SNP_LAUNCH_UPDATE on SNP). A TD's "
    "build-time image is small; the rest of memory is accepted by the guest.",
    default="4MiB", bound="vm")
_PATTERN_RANGES = ("scattered", "ranges")


def _region_field(what: str) -> FieldSpec:
    return FieldSpec("range", f"Guest-physical [start, end) that {what} is limited to, e.g. "
                     "[\"1GiB\", \"2GiB\"]. Default: the whole VM.", default=None, bound="vm")


def _align_field(what: str) -> FieldSpec:
    return FieldSpec("size", f"Alignment of the start of each {what}. 4KiB (the default) lets a range "
                     "straddle 2M boundaries, as guest buffers do, which forces huge mappings on both "
                     "sides to split; 2MiB keeps 2M ranges on whole regions.", default="4KiB")


# ------------------------------------------------------------------------------------------------
# boot
# ------------------------------------------------------------------------------------------------

BOOT_FIELDS = {
    "image": _IMAGE,
    "accept": FieldSpec(
        "choice", "When the guest accepts its memory: 'eager' accepts all of it during boot (no "
        "unaccepted-memory support in the guest); 'lazy' accepts only the first lazy_accept bytes and "
        "leaves the rest to be accepted on first use (Linux CONFIG_UNACCEPTED_MEMORY), which touch "
        "phases then do.", default="eager", choices=("eager", "lazy")),
    "accept_level": _ACCEPT_LEVEL,
    "lazy_accept": FieldSpec(
        "size", "With accept = 'lazy': bytes at the start of memory accepted during boot (what the "
        "early kernel needs before the page allocator accepts on demand). Capped at the VM size.",
        default="256MiB", multiple_of=2 * MiB),
}


def gen_boot(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """Build-time image load, then the guest accepts its memory (all of it, or lazily a prefix)."""
    yield from interleave(_boot_vm(f, ctx, vm) for vm in ctx.vms)


def _boot_vm(f: dict, ctx: GenContext, vm: VmInstance) -> Iterator[np.ndarray]:
    image = f["image"] // PAGE_SIZE
    if f["accept"] == "eager":
        end = vm.memory_pages
    else:
        end = min(vm.memory_pages, _round_up(max(image, f["lazy_accept"] // PAGE_SIZE), PAGES_2M))
    level = f["accept_level"]
    if ctx.planning:
        mark_accepted(ctx.accepted(vm.slot), 0, end)
        ctx.plan_ops(image + accept_range_count(image, end, level))
        return
    for g0 in range(0, image, ctx.chunk):
        gfn = np.arange(g0, min(image, g0 + ctx.chunk), dtype=np.int64)
        yield ops(OP_BUILD_ADD, vm.slot, gfn, level=LVL_4K)
    yield from accept_range(ctx, vm.slot, image, end, level, ctx.chunk)
    # the image pages were added accepted, so the region straddling its end is whole now too
    mark_accepted(ctx.accepted(vm.slot), 0, end)


# ------------------------------------------------------------------------------------------------
# touch
# ------------------------------------------------------------------------------------------------

TOUCH_FIELDS = {
    "size": FieldSpec("size", "Bytes of guest memory the accesses spread over (from offset). Default: "
                      "all of the VM after offset.", default=None, bound="vm"),
    "offset": FieldSpec("size", "Where the touched memory starts (guest-physical).", default=0, min=0,
                        bound="vm"),
    "pattern": FieldSpec(
        "choice", "Order of the accesses: 'sequential' walks the pages in order (wrapping around), "
        "'random' picks pages uniformly, 'zipf' picks them with a Zipf popularity (a few hot pages, "
        "a long cold tail, hot pages scattered over memory), like a cache or a database.",
        default="sequential", choices=("sequential", "random", "zipf")),
    "zipf_s": FieldSpec("float", "Zipf exponent of pattern = 'zipf': larger is more skewed; 0 is uniform.",
                        default=1.1, min=0.0, max=10.0),
    "accesses": FieldSpec("int", "Number of access operations. Default: one per page of size.",
                          default=None, min=1),
    "shared": FieldSpec("bool", "Access shared (unencrypted) memory instead of private: sets F_SHARED, "
                        "as for I/O buffers. Shared memory is never accepted.", default=False),
    "write": FieldSpec("bool", "Write accesses (F_WRITE) rather than reads.", default=True),
    "accept_on_touch": FieldSpec(
        "bool", "Accept unaccepted memory before its first use, in 4 MiB chunks, as Linux's lazy "
        "acceptance does. false models a guest touching memory it never accepted (a guest bug; TDX "
        "then injects #VE, SNP a #VC).", default=True),
    "accept_level": _ACCEPT_LEVEL,
}


def gen_touch(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """Guest accesses to its memory, with lazy acceptance in front of first touches."""
    yield from interleave(_touch_vm(f, ctx, vm) for vm in ctx.vms)


def _touch_vm(f: dict, ctx: GenContext, vm: VmInstance) -> Iterator[np.ndarray]:
    off = f["offset"] // PAGE_SIZE
    if off >= vm.memory_pages:
        ctx.fail("offset", f"{format_size(f['offset'])} is at or past the end of VM {vm.name!r}",
                 f"below {format_size(vm.memory)}")
    pages = vm.memory_pages - off if f["size"] is None else f["size"] // PAGE_SIZE
    if off + pages > vm.memory_pages:
        ctx.fail("size", f"offset {format_size(f['offset'])} + size {format_size(pages * PAGE_SIZE)} "
                 f"go past the end of VM {vm.name!r} ({format_size(vm.memory)})",
                 f"offset + size at most {format_size(vm.memory)}")
    n = pages if f["accesses"] is None else f["accesses"]
    pattern = f["pattern"]
    lazy = f["accept_on_touch"] and not f["shared"]
    level = f["accept_level"]
    flags = (F_SHARED if f["shared"] else 0) | (F_WRITE if f["write"] else 0)
    if ctx.planning:
        extra = 0
        if lazy:
            end = off + (min(n, pages) if pattern == "sequential" else pages)
            extra = lazy_accept_estimate(ctx.accepted(vm.slot), off, end, level)
        ctx.plan_ops(n + extra)
        return
    rng = ctx.rng
    if pattern == "zipf":
        mult, add = _scatter(rng, pages)
    for i0 in range(0, n, ctx.chunk):
        m = min(ctx.chunk, n - i0)
        if pattern == "sequential":
            idx = (i0 + np.arange(m, dtype=np.int64)) % pages
        elif pattern == "random":
            idx = rng.integers(0, pages, size=m, dtype=np.int64)
        else:
            idx = (zipf_ranks(rng, m, pages, f["zipf_s"]) * mult + add) % pages
        gfn = off + idx
        vcpu = ctx.vcpus(vm.slot, m)
        if lazy:
            yield from accesses_with_lazy_accept(ctx, vm.slot, gfn, vcpu, flags, level, ctx.chunk)
        else:
            yield ops(OP_ACCESS, vm.slot, gfn, vcpu=vcpu, flags=flags)


def zipf_ranks(rng: np.random.Generator, m: int, n: int, s: float) -> np.ndarray:
    """``m`` ranks in ``[0, n)`` with P(rank k) roughly proportional to 1/(k+1)^s.

    Inverse-transform sampling of the continuous power law on ``[1, n+1)``, floored: exact count,
    no rejection loop (``numpy``'s ``zipf`` is unbounded and rejects badly for s near 1), and
    any s >= 0 works.
    """
    u = rng.random(m)
    if abs(s - 1.0) < 1e-9:
        x = np.exp(u * math.log(n + 1))
    else:
        e = 1.0 - s
        x = (1.0 + u * ((n + 1.0) ** e - 1.0)) ** (1.0 / e)
    return np.clip(np.floor(x).astype(np.int64) - 1, 0, n - 1)


def _scatter(rng: np.random.Generator, n: int) -> tuple[int, int]:
    """A random affine bijection ``k -> (k * mult + add) % n`` that spreads hot ranks over memory
    without a permutation table (which would be 2 GiB for a 1 TiB guest)."""
    if n <= 1:
        return 1, 0
    while True:
        mult = int(rng.integers(1, n))
        if math.gcd(mult, n) == 1:
            return mult, int(rng.integers(0, n))


# ------------------------------------------------------------------------------------------------
# convert and punch: placement of ranges
# ------------------------------------------------------------------------------------------------

def _range_fields(what: str, default_pattern: str) -> dict[str, FieldSpec]:
    return {
        "size": FieldSpec("size", f"Total bytes {what}.", default="64MiB", bound="vm"),
        "pattern": FieldSpec(
            "choice", "'scattered': single 4K pages anywhere; 'ranges': contiguous ranges of "
            "range_size. Ranges of one phase never overlap.", default=default_pattern,
            choices=_PATTERN_RANGES),
        "range_size": FieldSpec("size", "Bytes per range with pattern = 'ranges'.", default="2MiB",
                                bound="vm"),
        "region": _region_field(what),
        "align": _align_field("range"),
    }


def _place(f: dict, ctx: GenContext, vm: VmInstance) -> tuple[int, int, int, int, int]:
    """Check the placement fields against ``vm``: (count, pages per range, lo, hi, align)."""
    lo, hi = (0, vm.memory_pages) if f["region"] is None else \
        (f["region"][0] // PAGE_SIZE, f["region"][1] // PAGE_SIZE)
    length = 1 if f["pattern"] == "scattered" else f["range_size"] // PAGE_SIZE
    align = f["align"] // PAGE_SIZE
    if length % align:
        ctx.fail("align", f"{format_size(f['align'])} does not divide the range length "
                 f"{format_size(length * PAGE_SIZE)}", "a divisor of range_size (4KiB for scattered)")
    unit = length * PAGE_SIZE
    if f["size"] % unit:
        ctx.fail("size", f"{format_size(f['size'])} is not a multiple of range_size {format_size(unit)}",
                 f"a multiple of {format_size(unit)}")
    n = f["size"] // unit
    units = hi // align - (-(-lo // align))
    if n * (length // align) > units:
        ctx.fail("size", f"{n} ranges of {format_size(unit)} do not fit in "
                 f"[{format_size(lo * PAGE_SIZE)}, {format_size(hi * PAGE_SIZE)}) of VM {vm.name!r}",
                 f"at most {format_size(units * align * PAGE_SIZE)} in that region")
    return n, length, lo, hi, align


# ------------------------------------------------------------------------------------------------
# convert
# ------------------------------------------------------------------------------------------------

CONVERT_FIELDS = {
    "direction": FieldSpec(
        "choice", "'to_shared': the guest makes private memory shared (MapGPA / page-state change) and "
        "uses it; 'to_private': it takes shared memory back and accepts it again (ranges made shared "
        "by earlier phases first); 'round_trip': both, range by range, like a bounce buffer.",
        default="round_trip", choices=("to_shared", "to_private", "round_trip")),
    **_range_fields("converted", "scattered"),
    "accept_level": FieldSpec(
        "level", "Page size the guest accepts pages made private again at: 4K page by page, or "
        "2M for whole aligned 2M regions of a range (4K at its edges), as Linux guests do after a "
        "conversion (TDX tdx_accept_memory; SNP validates at the page-state-change entry sizes).",
        default="4K", choices=("4K", "2M")),
}

#: per direction: steps of (convert flags, follow-up op kind, follow-up flags, follow-up level)
_CONVERT_STEPS = {
    "to_shared": ((F_SHARED, OP_ACCESS, F_SHARED, LVL_4K),),
    "to_private": ((0, OP_ACCEPT, 0, LVL_4K),),
    "round_trip": ((F_SHARED, OP_ACCESS, F_SHARED, LVL_4K), (0, OP_ACCEPT, 0, LVL_4K)),
}


def gen_convert(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """Private<->shared conversions, each followed by the guest's use of the converted pages."""
    yield from interleave(_convert_vm(f, ctx, vm) for vm in ctx.vms)


def _convert_vm(f: dict, ctx: GenContext, vm: VmInstance) -> Iterator[np.ndarray]:
    n, length, lo, hi, align = _place(f, ctx, vm)
    steps = _CONVERT_STEPS[f["direction"]]
    if ctx.planning:
        ctx.plan_ops(n * len(steps) * (1 + length))
        return
    pool = ctx.state(vm.slot).extra.setdefault("shared_ranges", [])
    if f["direction"] == "to_private" and pool:
        starts, lengths = _take_shared(ctx.rng, pool, n * length, lo, hi)
    else:
        starts = place_ranges(ctx.rng, n, length, lo, hi, align)
        lengths = np.full(n, length, dtype=np.int64)
    if f["direction"] == "to_shared":
        pool.append((starts, lengths))
    per = len(steps) * (1 + lengths)
    group = max(1, ctx.chunk // int(per.max(initial=1)))
    # accepting at 2M only changes ranges that can hold a whole aligned 2M region
    by_region = f["accept_level"] == LVL_2M and int(lengths.max(initial=0)) >= PAGES_2M \
        and f["direction"] != "to_shared"
    make = _range_ops_2m if by_region else _range_ops
    for i0 in range(0, len(starts), group):
        yield make(ctx, vm.slot, starts[i0:i0 + group], lengths[i0:i0 + group], steps)


def _take_shared(rng, pool: list, want: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``want`` pages of whole ranges from ``pool`` (inside [lo, hi)), in random order."""
    starts = np.concatenate([s for s, _ in pool])
    lengths = np.concatenate([l for _, l in pool])
    inside = (starts >= lo) & (starts + lengths <= hi)
    order = rng.permutation(np.flatnonzero(inside))
    take = order[np.cumsum(lengths[order]) <= want]
    keep = np.ones(len(starts), dtype=bool)
    keep[take] = False
    pool[:] = [(starts[keep], lengths[keep])] if keep.any() else []
    return starts[take], lengths[take]


def _range_ops(ctx: GenContext, slot: int, starts: np.ndarray, lengths: np.ndarray, steps) -> np.ndarray:
    """For each range, for each step: OP_CONVERT over the range, then one guest op per page."""
    seg = 1 + lengths                                   # ops per step of each range
    total = len(steps) * seg                            # ops per range
    n = int(total.sum())
    rid = np.repeat(np.arange(len(starts)), total)
    local = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(total) - total, total)
    step = local // seg[rid]
    j = local % seg[rid]
    conv = j == 0
    conv_flags, kinds, flags, levels = (np.array(x) for x in zip(*steps))
    out = ops(np.where(conv, OP_CONVERT, kinds[step]), slot, starts[rid] + np.where(conv, 0, j - 1),
              count=np.where(conv, lengths[rid], 1), flags=np.where(conv, conv_flags[step], flags[step]),
              level=np.where(conv, LVL_4K, levels[step]))
    guest = ~conv
    out["vcpu"][guest] = ctx.vcpus(slot, int(np.count_nonzero(guest)))
    return out


def _range_ops_2m(ctx: GenContext, slot: int, starts: np.ndarray, lengths: np.ndarray,
                  steps) -> np.ndarray:
    """As :func:`_range_ops`, but pages made private again are accepted at 2M where a range holds
    whole aligned 2M regions (one accept per region) and at 4K elsewhere."""
    parts = []
    for start, length in zip(starts.tolist(), lengths.tolist()):
        for conv_flags, kind, flags, level in steps:
            parts.append(ops(OP_CONVERT, slot, start, count=length, flags=conv_flags,
                             level=LVL_4K))
            if kind != OP_ACCEPT:
                gfn = np.arange(start, start + length, dtype=np.int64)
                parts.append(ops(kind, slot, gfn, vcpu=ctx.vcpus(slot, length), flags=flags,
                                 level=level))
                continue
            for lo, hi, lvl in segments(start, start + length, LVL_2M):
                gfn = np.arange(lo, hi, PAGES_2M if lvl == LVL_2M else 1, dtype=np.int64)
                parts.append(ops(OP_ACCEPT, slot, gfn, vcpu=ctx.vcpus(slot, len(gfn)),
                                 flags=flags, level=lvl))
    return concat(parts)


# ------------------------------------------------------------------------------------------------
# punch
# ------------------------------------------------------------------------------------------------

PUNCH_FIELDS = _range_fields("punched", "ranges")


def gen_punch(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """guest_memfd hole punches (fallocate PUNCH_HOLE) from the VMM."""
    yield from interleave(_punch_vm(f, ctx, vm) for vm in ctx.vms)


def _punch_vm(f: dict, ctx: GenContext, vm: VmInstance) -> Iterator[np.ndarray]:
    n, length, lo, hi, align = _place(f, ctx, vm)
    if ctx.planning:
        ctx.plan_ops(n)
        return
    starts = place_ranges(ctx.rng, n, length, lo, hi, align)
    for i0 in range(0, n, ctx.chunk):
        s = starts[i0:i0 + ctx.chunk]
        yield ops(OP_PUNCH, vm.slot, s, count=length)


# ------------------------------------------------------------------------------------------------
# folio split / collapse
# ------------------------------------------------------------------------------------------------

FOLIO_SPLIT_FIELDS = {
    "count": FieldSpec("int", "Number of 2M regions whose backing folio the host splits (each region "
                       "at most once per phase; capped at the VM's regions).", default=64, min=1),
}
FOLIO_COLLAPSE_FIELDS = {
    "count": FieldSpec("int", "Number of 2M regions khugepaged collapses (capped at the candidates).",
                       default=64, min=1),
    "pick": FieldSpec(
        "choice", "'split': collapse regions an earlier folio_split phase split (what khugepaged "
        "finds to do); 'any': random regions, most of which are already huge.", default="split",
        choices=("split", "any")),
}


def gen_folio_split(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """The host splits huge folios backing guest memory (memory pressure, compaction, migration)."""
    yield from interleave(_folio_vm(f, ctx, vm, OP_FOLIO_SPLIT) for vm in ctx.vms)


def gen_folio_collapse(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """khugepaged collapses 512 4K folios back into one 2M folio."""
    yield from interleave(_folio_vm(f, ctx, vm, OP_FOLIO_COLLAPSE) for vm in ctx.vms)


def _folio_vm(f: dict, ctx: GenContext, vm: VmInstance, kind: int) -> Iterator[np.ndarray]:
    # drawn while planning too (it is cheap) so that a later collapse with pick = 'split' plans
    # the right number of operations
    split = ctx.state(vm.slot).folio_split
    if kind == OP_FOLIO_COLLAPSE and f["pick"] == "split":
        candidates = np.flatnonzero(split)
    else:
        candidates = np.arange(vm.regions, dtype=np.int64)
    c = min(f["count"], len(candidates))
    regions = ctx.rng.choice(candidates, c, replace=False) if c else candidates[:0]
    split[regions] = kind == OP_FOLIO_SPLIT
    if ctx.planning:
        ctx.plan_ops(c)
        return
    if c:
        yield ops(kind, vm.slot, regions.astype(np.int64) * PAGES_2M, level=LVL_2M)


# ------------------------------------------------------------------------------------------------
# churn
# ------------------------------------------------------------------------------------------------

CHURN_FIELDS = {
    "template": FieldSpec("vm", "The [[vm]] each churned VM copies (memory, vCPUs, backing); usually one "
                          "with start = false."),
    "count": FieldSpec("int", "Number of VMs created and destroyed.", default=10, min=1, max=1_000_000),
    "concurrency": FieldSpec("int", "VMs alive at once; their operations interleave.", default=1, min=1,
                             max=1024),
    "touch": FieldSpec("size", "Bytes each VM accepts eagerly and then accesses, from gfn 0.",
                       default="256MiB", bound="template"),
    "image": FieldSpec("size", _IMAGE.doc, default="4MiB", bound="template"),
    "accept_level": _ACCEPT_LEVEL,
}


def gen_churn(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """Short-lived VMs created, booted, used and destroyed, `concurrency` at a time."""
    template = ctx.template(f["template"])
    count = f["count"]
    lanes = min(f["concurrency"], count)
    image = min(f["image"], template.memory) // PAGE_SIZE
    touch = f["touch"] // PAGE_SIZE
    level = f["accept_level"]
    per_vm = (1 + template.vcpus + image + accept_range_count(image, max(image, touch), level)
              + touch + 1)
    name = lambda k: f"{template.name}.p{ctx.phase.index}.{k}"  # noqa: E731
    # the first VM of every lane is created before any lane runs, so every lane owns one slot
    # and reuses it (see GenContext.create_vm); planning makes the same calls in the same order
    first = [ctx.create_vm(template, name(k)) for k in range(lanes)]
    if ctx.planning:
        ctx.plan_ops(per_vm * count)
        slots = list(first)
        for k in range(lanes, count):
            j = k % lanes
            ctx.destroy_vm(slots[j])
            slots[j] = ctx.create_vm(template, name(k), reuse=slots[j])
        for s in slots:
            ctx.destroy_vm(s)
        return
    yield from interleave(_churn_lane(ctx, template, first[j], range(j, count, lanes), name,
                                      image, touch, level) for j in range(lanes))


def _churn_lane(ctx: GenContext, template, slot: int, ks: range, name, image: int, touch: int,
                level: int) -> Iterator[np.ndarray]:
    for n, k in enumerate(ks):
        if n:
            ctx.destroy_vm(slot)
            slot = ctx.create_vm(template, name(k), reuse=slot)
        vm = ctx.vm(slot)
        head = [vm_create_ops(vm)]
        if image:
            head.append(ops(OP_BUILD_ADD, slot, np.arange(image, dtype=np.int64), level=LVL_4K))
        yield concat(head)
        yield from accept_range(ctx, slot, image, max(image, touch), level, ctx.chunk)
        mark_accepted(ctx.accepted(slot), 0, max(image, touch))
        for g0 in range(0, touch, ctx.chunk):
            gfn = np.arange(g0, min(touch, g0 + ctx.chunk), dtype=np.int64)
            yield ops(OP_ACCESS, slot, gfn, vcpu=ctx.vcpus(slot, len(gfn)), flags=F_WRITE)
        yield ops(OP_VM_DESTROY, slot)
    ctx.destroy_vm(slot)


# ------------------------------------------------------------------------------------------------
# idle, recover
# ------------------------------------------------------------------------------------------------

IDLE_FIELDS = {
    "duration": FieldSpec("duration", "Virtual time the VMs run without exits (no memory events), e.g. "
                          "to let periodic work such as huge-page recovery or RCU callbacks happen.",
                          default="10ms"),
}


def gen_idle(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """Time passes: one OP_IDLE per target VM."""
    vms = ctx.vms
    if ctx.planning:
        ctx.plan_ops(len(vms))
        return
    if vms:
        yield ops(OP_IDLE, np.array([v.slot for v in vms], dtype=np.int32), arg=f["duration"])


def gen_recover(f: dict, ctx: GenContext) -> Iterator[np.ndarray]:
    """KVM's huge-page recovery pass over each target VM's whole memory."""
    vms = ctx.vms
    if ctx.planning:
        ctx.plan_ops(len(vms))
        return
    if vms:
        yield ops(OP_RECOVER, np.array([v.slot for v in vms], dtype=np.int32), 0,
                  count=np.array([v.memory_pages for v in vms], dtype=np.int64))


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


# ------------------------------------------------------------------------------------------------
# the records
# ------------------------------------------------------------------------------------------------

BOOT = PhaseKind("boot", """\
Boot: the VMM loads the build-time image (one page-add per 4K page: TDH.MEM.PAGE.ADD for a TD,
SNP_LAUNCH_UPDATE for SNP), then the guest accepts its memory (TDG.MEM.PAGE.ACCEPT / PVALIDATE).
Eager acceptance touches every page at boot, which is why a 64 GiB TD boots 4x slower without
lazy acceptance; 'lazy' accepts only a prefix and leaves the rest to touch phases. At 2M the guest
lets the host keep 2M mappings; at 4K it forces 4K mappings or splits.""", BOOT_FIELDS, gen_boot)

TOUCH = PhaseKind("touch", """\
Guest memory accesses (EPT/NPT faults on first touch, then nothing for the host unless the
mapping changes). Accesses rotate over the vCPUs. Unaccepted memory is accepted on first touch in
4 MiB chunks, as Linux's lazy acceptance does.""", TOUCH_FIELDS, gen_touch)

CONVERT = PhaseKind("convert", """\
Private<->shared conversions (KVM_SET_MEMORY_ATTRIBUTES after a TDX MapGPA or an SNP page-state
change): each range is converted by the VMM (vcpu -1), then the guest uses it: shared pages are
accessed, pages made private again are accepted (at 4K, or at 2M for whole aligned regions with
accept_level = "2M"). A conversion inside a 2M mapping forces a split; a storm of them is what
bounce buffers and device I/O do to a confidential guest.""",
                    CONVERT_FIELDS, gen_convert)

PUNCH = PhaseKind("punch", """\
guest_memfd hole punches (fallocate(PUNCH_HOLE)), as a VMM does after converting memory to shared
or to discard memory: the private pages go back to the host, and KVM must zap exactly that range,
splitting any 2M mapping crossing its edges.""", PUNCH_FIELDS, gen_punch)

FOLIO_SPLIT = PhaseKind("folio_split", """\
The host splits 2M folios backing guest memory into 4K folios (memory pressure, compaction,
migration of part of a folio). KVM must not map more than the folio, so 2M mappings over the
region are split.""", FOLIO_SPLIT_FIELDS, gen_folio_split)

FOLIO_COLLAPSE = PhaseKind("folio_collapse", """\
khugepaged collapses a 2M range of 4K folios into one 2M folio, after which huge-page recovery
may map it at 2M again.""", FOLIO_COLLAPSE_FIELDS, gen_folio_collapse)

CHURN = PhaseKind("churn", """\
VM churn: `count` short-lived VMs (a CI farm, serverless, confidential containers), `concurrency`
at a time, each created with its vCPUs, booted from a small image, eagerly accepting and touching
`touch` bytes, then destroyed. Shows memory the host keeps after VMs are gone (pools, PAMT,
metadata) and the cost of teardown. Slots are reused: concurrency c needs c slots. The phase's
`vm` field is not used: the VMs come from `template`.""",
                  CHURN_FIELDS, gen_churn)

IDLE = PhaseKind("idle", """\
Time passes while the guests run without memory exits (one OP_IDLE per VM, carrying the
duration): lets time-driven host work (huge-page recovery, RCU callbacks) show up.""",
                 IDLE_FIELDS, gen_idle)

RECOVER = PhaseKind("recover", """\
KVM's NX/huge-page recovery over the whole VM: split mappings whose backing is huge again are
merged back into 2M mappings where the vendor allows it.""", {}, gen_recover)

BUILTIN_PHASE_KINDS = (BOOT, TOUCH, CONVERT, PUNCH, FOLIO_SPLIT, FOLIO_COLLAPSE, CHURN, IDLE, RECOVER)


@hookimpl
def emu_phase_kinds():
    """The built-in phase kinds."""
    return list(BUILTIN_PHASE_KINDS)
