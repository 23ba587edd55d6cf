"""Bucket numbers of bpftrace's ``hist()`` and ``lhist()``, as plain integer functions.

The generated probe code calls ``hist_index`` and ``lhist_index`` for every update, so they are
written in the subset numba compiles unchanged (integers, ``if``, ``while``, tuples) and are
jitted by ``emu.probe.runtime``; ``emu.probe.output`` uses the same numbering to label rows, so a
bucket means the same range on both sides.

Where each rule comes from in bpftrace (repository bpftrace/bpftrace):

* ``hist``: index 0 holds every negative value; the 2**k indexes after it hold 0 .. 2**k-1, one
  value each; after that every power of two [2**p, 2**(p+1)) is cut into 2**k equal buckets.
  The bucket numbering is the inverse of ``hist_index_label`` and ``build_histogram`` in
  ``src/types_format.cpp`` (commit 4f00845e16), whose comment spells out the layout, and it
  matches the log2 helper's "index 0 for negatives, 1 for 0" comment in
  ``src/ast/codegen_llvm.cpp``; ``tests/runtime/outputs/hist.txt`` pins it for k = 0.
* ``lhist``: the comment on ``createLinearFunction`` in ``src/ast/codegen_llvm.cpp``: index 0
  below ``min``, ``1 + (v - min) / step`` up to ``max`` inclusive, and every value above
  ``max`` in ``1 + (max - min) / step``. So ``v == max`` shares the overflow bucket, which
  ``build_linear_histogram`` labels ``[max, ...)``.
"""

INT64_MIN = -(1 << 63)


def hist_index(v, k):
    """Bucket of value ``v`` in ``hist(v, k)`` (``0 <= k <= 5``).

    Negative values go to 0 and values below 2**k to ``v + 1``; above that, with p the
    position of the leading one bit, the index is ``((p - k) << k) + (v >> (p - k)) + 1``:
    the power of two picks a group of 2**k buckets and the k bits after the leading one pick
    the bucket inside it. Source: see the module docstring (types_format.cpp, codegen_llvm.cpp).
    """
    if v < 0:
        return 0
    if v < (1 << k):
        return v + 1
    p = 0
    t = v
    if t >= (1 << 32):
        t = t >> 32
        p += 32
    if t >= (1 << 16):
        t = t >> 16
        p += 16
    if t >= (1 << 8):
        t = t >> 8
        p += 8
    if t >= (1 << 4):
        t = t >> 4
        p += 4
    if t >= (1 << 2):
        t = t >> 2
        p += 2
    if t >= 2:
        p += 1
    return ((p - k) << k) + (v >> (p - k)) + 1


def hist_size(k):
    """Number of buckets ``hist(v, k)`` needs so that every int64 value has one.

    The largest int64 value, 2**63 - 1, lands in bucket ``(64 - k) << k``, so this is one more;
    65 buckets for k = 0 (negatives, 0, 1, then 63 powers of two).
    """
    return ((64 - k) << k) + 1


def hist_bounds(index, k):
    """Smallest and largest value (both inclusive) that ``hist(v, k)`` puts in bucket ``index``.

    Bucket 0 is (INT64_MIN, -1). bpftrace prints the half-open ``[lo, hi + 1)``, or ``[lo]``
    for a one-value bucket. Inclusive bounds keep the top bucket's end, 2**63 - 1, inside int64.
    The start of a bucket above 2**k is ``2**power * (2**k + sub)`` with ``power`` and ``sub``
    read from ``index - 1`` as in ``hist_index_label`` (src/types_format.cpp).
    """
    if index == 0:
        return (INT64_MIN, -1)
    n = 1 << k
    if index <= n:
        return (index - 1, index - 1)
    j = index - 1
    power = (j >> k) - 1
    sub = j & (n - 1)
    lo = (1 << power) * (n + sub)
    return (lo, lo + (1 << power) - 1)


def lhist_index(v, lo, hi, step):
    """Bucket of value ``v`` in ``lhist(v, lo, hi, step)``.

    0 below ``lo``, ``1 + (v - lo) // step`` from ``lo`` to ``hi`` inclusive, and every value
    above ``hi`` joins ``hi``'s bucket, ``1 + (hi - lo) // step`` (createLinearFunction,
    src/ast/codegen_llvm.cpp). The operands are never negative, so ``//`` equals C's division.
    """
    if v < lo:
        return 0
    if v > hi:
        return 1 + (hi - lo) // step
    return 1 + (v - lo) // step


def lhist_size(lo, hi, step):
    """Number of buckets of ``lhist(v, lo, hi, step)``: underflow, the range, overflow."""
    return 2 + (hi - lo) // step
