"""What a compiled probe program uses at run time, inside its jitted consumer.

The consumer receives plain addresses (see :mod:`emu.model.probe_call`) and reads them through
``int64*`` pointers: :func:`int64_ptr` turns an address into one. Pointers carry no reference
count, so these helpers cost what their arithmetic costs (``numba-engine-spike.md`` §0).

The program's memory ``D`` is one int64 array (:class:`emu.probe.codegen.DataLayout`): a header,
the maps, then an output buffer of records that Python formats after each batch. Maps are hash
tables with open addressing; a row is ``[state, key..., value...]`` with state 0 (empty),
1 (live) or 2 (deleted). Integer semantics follow BPF: division by zero gives 0, the remainder
by zero leaves the dividend, division truncates toward zero, shifts use the low 6 bits.
"""
from llvmlite import ir
import numpy as np
from numba import njit, types
from numba.cpython.unsafe.numbers import leading_zeros
from numba.extending import intrinsic

from emu.probe import buckets

# --- header words of D ---------------------------------------------------------------------------
H_EXIT = 0          # exit() was called
H_NOW = 1           # virtual time the program has reached (intervals; END's nsecs)
H_OUT_N = 2         # words used in the output buffer
H_OUT_LOST = 3      # output records dropped because the buffer was full
H_EVENTS = 4        # events the program has consumed
H_OUT_BASE = 5      # where the output buffer starts
H_OUT_CAP = 6       # its size in words
HEADER = 8          # interval "next fire" times follow

# --- output records ---------------------------------------------------------------------------------
REC_PRINTF = 1      # [1, format id, time, nargs, args...]
REC_PRINT_MAP = 2   # [2, map id, top, div, time, nrows, rows (keys and values, no state)...]
REC_PRINT_VALUE = 3  # [3, print id, time, value]
REC_CLEAR = 4       # [4, map id]: nothing to print; keeps ordering explicit for readers
ROW_EMPTY, ROW_LIVE, ROW_DELETED = 0, 1, 2

_JIT = {"_nrt": False, "cache": True}


@intrinsic
def int64_ptr(typingctx, addr):
    """View the integer ``addr`` as an ``int64*``."""
    sig = types.CPointer(types.int64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(64).as_pointer())

    return sig, codegen


lhist_index = njit(**_JIT)(buckets.lhist_index)


@njit(**_JIT)
def hist_index(v, k):
    """:func:`emu.probe.buckets.hist_index` with the leading one found by one instruction
    (``lzcnt``) instead of a binary search; tests check both give the same bucket."""
    if v < 0:
        return 0
    if v < (1 << k):
        return v + 1
    p = 63 - leading_zeros(np.uint64(v))
    return ((p - k) << k) + (v >> (p - k)) + 1


@njit(**_JIT)
def div(a, b):
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


@njit(**_JIT)
def mod(a, b):
    if b == 0:
        return a
    r = abs(a) % abs(b)
    return -r if a < 0 else r


@njit(**_JIT)
def shl(a, b):
    return a << (b & 63)


@njit(**_JIT)
def shr(a, b):
    return a >> (b & 63)


@njit(**_JIT)
def mix(h, k):
    """Fold key part ``k`` into hash ``h`` (a multiply-xorshift, good enough for gfns)."""
    h = (h ^ k) * -7046029254386353131        # 0x9E3779B97F4A7C15 as int64
    return h ^ ((h >> 31) & 0x1FFFFFFFF)


@njit(**_JIT)
def out_reserve(D, words):
    """Offset of ``words`` free words in the output buffer, or -1 (the record is lost)."""
    n = D[H_OUT_N]
    if n + words > D[H_OUT_CAP]:
        D[H_OUT_LOST] += 1
        return -1
    D[H_OUT_N] = n + words
    return D[H_OUT_BASE] + n


@njit(**_JIT)
def out_map(D, map_id, base, cap, row, top, div_, t):
    """Append a snapshot of a map's live rows (``print(@m)``) to the output buffer."""
    live = D[base]
    o = out_reserve(D, 6 + live * (row - 1))
    if o < 0:
        return
    D[o] = REC_PRINT_MAP
    D[o + 1] = map_id
    D[o + 2] = top
    D[o + 3] = div_
    D[o + 4] = t
    D[o + 5] = live
    w = o + 6
    for i in range(cap):
        r = base + 2 + i * row
        if D[r] == ROW_LIVE:
            for j in range(1, row):
                D[w] = D[r + j]
                w += 1


@njit(**_JIT)
def map_clear(D, base, cap, row):
    """``clear(@m)``: every key goes."""
    for i in range(cap):
        D[base + 2 + i * row] = ROW_EMPTY
    D[base] = 0


@njit(**_JIT)
def map_zero(D, base, cap, row, nkeys):
    """``zero(@m)``: keys stay, values become 0."""
    for i in range(cap):
        r = base + 2 + i * row
        if D[r] == ROW_LIVE:
            for j in range(1 + nkeys, row):
                D[r + j] = 0
