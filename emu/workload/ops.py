"""Vectorised building blocks for operation arrays: fill, interleave, re-chunk, place ranges.

Phase generators describe whole runs of operations with numpy (a 64 GiB boot is 16M operations),
never one Python object per operation; these helpers keep that style short.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from emu.model.layout import OP_DTYPE

#: operations a generator should put in one yielded array; fixed (never derived from the
#: consumer's batch size) so that random draws, and so the operation stream, do not depend on it
CHUNK = 1 << 16


_RAW = np.dtype((np.void, OP_DTYPE.itemsize))
_FIELDS = ("kind", "vm", "gfn", "vcpu", "count", "level", "flags", "arg")


def raw(a: np.ndarray) -> np.ndarray:
    """``a`` viewed as opaque records: copies of structured arrays go field by field and are 10-15x
    slower than copies of these (measured: 3.3 ms vs 0.22 ms to concatenate 2 x 65536 ops)."""
    return a.view(_RAW)


def ops(kind, vm, gfn=0, *, vcpu=-1, count=1, level=0, flags=0, arg=0, n: int | None = None) -> np.ndarray:
    """An ``OP_DTYPE`` array whose fields are the (broadcast) arguments.

    The length is ``n`` or, if ``n`` is None, the length of the array arguments (1 if all are
    scalars). Example: 512 4K accepts of the 2M region at gfn 1024 by vCPUs 0..7 in turn::

        ops(OP_ACCEPT, slot, 1024 + np.arange(512), vcpu=np.arange(512) % 8)

    Scalars are written once into a template record that is broadcast in one pass; only array
    arguments are written column by column (each column write is a strided pass over the array).
    """
    values = (kind, vm, gfn, vcpu, count, level, flags, arg)
    arrays = [(name, v) for name, v in zip(_FIELDS, values) if np.ndim(v)]
    if n is None:
        n = len(arrays[0][1]) if arrays else 1
    row = np.zeros(1, dtype=OP_DTYPE)
    for name, v in zip(_FIELDS, values):
        if not np.ndim(v):
            row[name] = v
    out = np.empty(n, dtype=OP_DTYPE)
    raw(out)[:] = raw(row)[0]
    for name, v in arrays:
        out[name] = v
    return out


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate operation arrays (an empty list gives an empty array)."""
    if not parts:
        return np.empty(0, dtype=OP_DTYPE)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([raw(p) for p in parts]).view(OP_DTYPE)


def interleave(streams: Iterable[Iterable[np.ndarray]], chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Merge streams operation by operation: a0 b0 c0 a1 b1 c1 ..., dropping streams that end.

    This is how several VMs (or several churned VMs) "run at once": their operations alternate,
    so their virtual clocks advance together and they meet on shared resources (host memory,
    global locks) in a realistic order instead of one VM finishing before the next starts.
    Streams are pulled lazily, one array at a time, in stream order; a generator that changes
    shared state between its yields (creating or destroying VMs) sees a deterministic order.
    Each yielded array holds at most ``max(chunk, number of streams)`` operations.
    """
    its = [iter(s) for s in streams]
    if len(its) == 1:
        yield from its[0]
        return
    bufs: list[np.ndarray | None] = [None] * len(its)
    pos = [0] * len(its)
    active = list(range(len(its)))
    while active:
        for i in list(active):
            while bufs[i] is None or pos[i] >= len(bufs[i]):
                nxt = next(its[i], None)
                if nxt is None:
                    active.remove(i)
                    bufs[i] = None
                    break
                bufs[i], pos[i] = nxt, 0
        if not active:
            return
        k = len(active)
        m = min(len(bufs[i]) - pos[i] for i in active)
        m = max(1, min(m, chunk // k))
        out = np.empty(m * k, dtype=OP_DTYPE)
        for j, i in enumerate(active):
            raw(out)[j::k] = raw(bufs[i][pos[i]:pos[i] + m])
            pos[i] += m
        yield out


def rechunk(stream: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Re-cut a stream of arrays into arrays of exactly ``size`` operations (the last may be shorter).

    Full, equal batches keep the engine's per-batch overhead (one call into jitted code) constant
    however the generators happened to cut their output.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    parts: list[np.ndarray] = []
    have = 0
    for arr in stream:
        n = len(arr)
        if n == 0:
            continue
        if have == 0 and n == size:
            yield arr
            continue
        parts.append(arr)
        have += n
        if have >= size:
            cat = concat(parts)
            full = have // size
            for b in range(full):
                yield cat[b * size:(b + 1) * size]
            rest = cat[full * size:]
            parts = [rest] if len(rest) else []
            have = len(rest)
    if have:
        yield concat(parts)


def place_ranges(rng: np.random.Generator, n: int, length: int, lo: int, hi: int, align: int = 1) -> np.ndarray:
    """Starts of ``n`` non-overlapping ranges of ``length`` pages inside ``[lo, hi)``, in random order.

    Starts are multiples of ``align`` pages (counted from 0, not from ``lo``). Placement is
    uniform over all arrangements: draw ``n`` gap offsets among the free slots, sort them, and
    push range k right by k lengths (the "stars and bars" construction), which needs O(n log n)
    work and no rejection loop however full the region is. ``ValueError`` if they cannot fit.
    """
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if length % align:
        raise ValueError(f"a range of {length} pages is not a multiple of the alignment {align}")
    first = -(-lo // align)
    units = hi // align - first
    lu = length // align
    free = units - n * lu
    if free < 0:
        raise ValueError(f"{n} ranges of {length} pages do not fit in {max(units, 0) * align} pages")
    gaps = np.sort(rng.integers(0, free + 1, size=n, dtype=np.int64))
    starts = (first + gaps + np.arange(n, dtype=np.int64) * lu) * align
    return rng.permutation(starts)
