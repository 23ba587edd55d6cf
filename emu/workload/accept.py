"""Guest acceptance of private memory, as Linux does it, in vectorised form.

A TDX guest must ``TDG.MEM.PAGE.ACCEPT`` and an SNP guest ``PVALIDATE`` private memory before
using it. Linux either accepts everything at boot (eager) or leaves memory *unaccepted* and
accepts it on first allocation, in units of the unaccepted-memory bitmap: 2 MiB bits, accepted
in 4 MiB chunks (``reference/snp.md``: "Linux lazy acceptance accepts in 4 MB chunks"). It uses
the largest size the range allows: 2M for whole aligned regions and 4K for ragged edges, unless
told to use 4K throughout (a guest or firmware that only accepts 4K pages), which is what the
``accept_level`` knob of the phases models. Plain VMs receive the same operations; the plain
vendor treats them as ordinary accesses.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from emu.model.consts import LVL_2M, LVL_4K, OP_ACCEPT, OP_ACCESS
from emu.model.layout import PAGES_2M
from emu.workload.ops import CHUNK, ops, raw

#: regions accepted together on a lazy-accept fault (the 4 MiB chunk of Linux's accept_memory)
LAZY_CHUNK_REGIONS = 2


def segments(start: int, end: int, level: int) -> list[tuple[int, int, int]]:
    """``[(lo, hi, level)]`` covering ``[start, end)``: 2M ops for whole regions, 4K for the edges."""
    if start >= end:
        return []
    if level != LVL_2M:
        return [(start, end, LVL_4K)]
    a = -(-start // PAGES_2M) * PAGES_2M
    b = end // PAGES_2M * PAGES_2M
    if a >= b:
        return [(start, end, LVL_4K)]
    return [s for s in ((start, a, LVL_4K), (a, b, LVL_2M), (b, end, LVL_4K)) if s[0] < s[1]]


def accept_range_count(start: int, end: int, level: int) -> int:
    """Operations :func:`accept_range` emits for ``[start, end)`` (for planning estimates)."""
    return sum((hi - lo) // (PAGES_2M if lvl == LVL_2M else 1) for lo, hi, lvl in segments(start, end, level))


def mark_accepted(accepted: np.ndarray, start: int, end: int) -> None:
    """Mark the 2M regions lying wholly inside pages ``[start, end)`` as accepted."""
    lo = -(-start // PAGES_2M)
    hi = end // PAGES_2M
    if lo < hi:
        accepted[lo:hi] = True


def accept_range(ctx, slot: int, start: int, end: int, level: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The guest accepts pages ``[start, end)`` in order, vCPUs taking turns; marks the tracker.

    At ``LVL_2M``, whole aligned 2M regions take one operation each and ragged edges 4K ones.
    """
    mark_accepted(ctx.accepted(slot), start, end)
    for lo, hi, lvl in segments(start, end, level):
        step = PAGES_2M if lvl == LVL_2M else 1
        span = chunk * step
        for g0 in range(lo, hi, span):
            gfn = np.arange(g0, min(hi, g0 + span), step, dtype=np.int64)
            yield ops(OP_ACCEPT, slot, gfn, vcpu=ctx.vcpus(slot, len(gfn)), level=lvl)


def accesses_with_lazy_accept(ctx, slot: int, gfn: np.ndarray, vcpu: np.ndarray, flags: int,
                              level: int, limit: int = CHUNK) -> Iterator[np.ndarray]:
    """``OP_ACCESS`` to each of ``gfn`` with lazy acceptance in front of first touches.

    Where an access falls in a 2M region the tracker says is unaccepted, the unaccepted regions
    of its 4 MiB chunk are accepted first, by the same vCPU, right before that access (what
    Linux's ``accept_memory()`` does when the page allocator hands out unaccepted memory). The
    tracker is updated, so later accesses to the chunk, in this array or later ones, do not
    accept again. Yields arrays of about ``limit`` operations: the first random touches of a
    fresh guest at 4K can turn 64K accesses into millions of accepts.
    """
    accepted = ctx.accepted(slot)
    reg = gfn >> 9
    need = ~accepted[reg]
    if not need.any():
        yield ops(OP_ACCESS, slot, gfn, vcpu=vcpu, flags=flags)
        return
    idx = np.flatnonzero(need)
    chunk_ids, first = np.unique(reg[idx] // LAZY_CHUNK_REGIONS, return_index=True)
    pos = idx[first]
    order = np.argsort(pos, kind="stable")
    pos, chunk_ids = pos[order], chunk_ids[order]
    regs = chunk_ids[:, None] * LAZY_CHUNK_REGIONS + np.arange(LAZY_CHUNK_REGIONS)
    valid = regs < len(accepted)
    valid &= ~accepted[np.where(valid, regs, 0)]
    regions = regs[valid]                                        # in order of first use
    owner = np.broadcast_to(pos[:, None], regs.shape)[valid]     # the access each precedes
    accepted[regions] = True
    per = 1 if level == LVL_2M else PAGES_2M
    n = len(gfn)
    out_end = np.arange(1, n + 1) + np.cumsum(np.bincount(owner, minlength=n)) * per
    bounds = [0]
    if out_end[-1] > limit:
        cuts = np.searchsorted(out_end, np.arange(limit, out_end[-1], limit), side="left") + 1
        bounds.extend(int(c) for c in np.unique(cuts) if 0 < c < n)
    bounds.append(n)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        r_lo, r_hi = np.searchsorted(owner, [lo, hi], side="left")
        p_regions, p_owner = regions[r_lo:r_hi], owner[r_lo:r_hi] - lo
        if per == 1:
            a_gfn, a_pos = p_regions * PAGES_2M, p_owner
        else:
            a_gfn = (p_regions[:, None] * PAGES_2M + np.arange(PAGES_2M)).ravel()
            a_pos = np.repeat(p_owner, PAGES_2M)
        access = ops(OP_ACCESS, slot, gfn[lo:hi], vcpu=vcpu[lo:hi], flags=flags)
        if not len(a_pos):
            yield access
            continue
        accept = ops(OP_ACCEPT, slot, a_gfn, vcpu=vcpu[lo:hi][a_pos], level=level)
        m, k = hi - lo, len(a_pos)
        out = np.empty(m + k, dtype=access.dtype)
        raw(out)[np.arange(m) + np.cumsum(np.bincount(a_pos, minlength=m))] = raw(access)
        raw(out)[a_pos + np.arange(k)] = raw(accept)
        yield out


def lazy_accept_estimate(accepted: np.ndarray, start: int, end: int, level: int) -> int:
    """Accept operations a touch of pages ``[start, end)`` causes at most, marking them accepted.

    Exact for a sequential touch; an upper bound for random ones (which may miss some chunks).
    """
    if start >= end:
        return 0
    c0 = (start // PAGES_2M) // LAZY_CHUNK_REGIONS
    c1 = ((end - 1) // PAGES_2M) // LAZY_CHUNK_REGIONS + 1
    lo, hi = c0 * LAZY_CHUNK_REGIONS, min(c1 * LAZY_CHUNK_REGIONS, len(accepted))
    n = int(np.count_nonzero(~accepted[lo:hi]))
    accepted[lo:hi] = True
    return n * (1 if level == LVL_2M else PAGES_2M)
