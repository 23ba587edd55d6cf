"""Bucket numbering of hist()/lhist() (emu.probe.buckets) against bpftrace's layout."""
import pytest

from emu.probe.buckets import (INT64_MIN, hist_bounds, hist_index, hist_size, lhist_index,
                               lhist_size)

INT64_MAX = (1 << 63) - 1


def _samples():
    """Edges of every power of two, their neighbours, and the int64 extremes."""
    vals = {INT64_MIN, -(1 << 40), -2, -1, 0, 1, 2, 3, INT64_MAX}
    for p in range(63):
        for d in (-1, 0, 1):
            vals.add((1 << p) + d)
        vals.add((1 << p) + (1 << p) // 3)
    return sorted(v for v in vals if INT64_MIN <= v <= INT64_MAX)


def test_hist_txt_inputs():
    # bpftrace tests/runtime/outputs/hist.txt: hist(-1), hist(2), hist(3), hist(7), hist(20)
    # fill the rows (..., 0), [2, 4) twice, [4, 8), [16, 32)
    assert [hist_index(v, 0) for v in (-1, 2, 3, 7, 20)] == [0, 3, 3, 4, 6]
    assert [hist_bounds(i, 0) for i in (1, 2, 3, 4, 6)] == [(0, 0), (1, 1), (2, 3), (4, 7),
                                                           (16, 31)]


def test_hist_json_inputs():
    # bpftrace tests/runtime/outputs/hist.json: hist(2), hist(1025) -> [2, 3] and [1024, 2047];
    # hist_10g.json: hist(10 * 2**30) -> [2**33, 2**34 - 1]
    assert hist_bounds(hist_index(1025, 0), 0) == (1024, 2047)
    assert hist_bounds(hist_index(10 << 30, 0), 0) == (1 << 33, (1 << 34) - 1)


@pytest.mark.parametrize("k", range(6))
def test_hist_buckets_tile_int64(k):
    """Buckets are contiguous, each value lies in its bucket, small values have their own."""
    size = hist_size(k)
    bounds = [hist_bounds(i, k) for i in range(size)]
    assert bounds[0] == (INT64_MIN, -1)
    assert bounds[-1][1] == INT64_MAX
    for (lo, hi), (nlo, _) in zip(bounds, bounds[1:]):
        assert lo <= hi and hi + 1 == nlo
    for v in _samples():
        lo, hi = bounds[hist_index(v, k)]
        assert lo <= v <= hi, (v, k)
    for v in range(2 << k):                      # 0 .. 2**(k+1)-1: one value per bucket
        assert hist_bounds(hist_index(v, k), k) == (v, v)
    assert hist_index(INT64_MAX, k) == size - 1


@pytest.mark.parametrize("k", range(6))
def test_hist_two_to_the_k_buckets_per_power_of_two(k):
    for p in range(k + 1, 62):
        first, last = hist_index(1 << p, k), hist_index((1 << (p + 1)) - 1, k)
        assert last - first + 1 == 1 << k
        assert hist_bounds(first, k)[0] == 1 << p


def test_hist_k2_layout():
    # k = 2: [8, 10), [12, 14), [96, 112) as bpftrace labels them (types_format.cpp)
    assert hist_bounds(hist_index(8, 2), 2) == (8, 9)
    assert hist_bounds(hist_index(12, 2), 2) == (12, 13)
    assert hist_bounds(hist_index(100, 2), 2) == (96, 111)
    assert hist_size(0) == 65 and hist_size(5) == (59 << 5) + 1


def test_lhist():
    # bpftrace tests/runtime/outputs/lhist.txt: lhist(v, 0, 10, 2) of 2, 3, 7, -1, 11
    assert [lhist_index(v, 0, 10, 2) for v in (2, 3, 7, -1, 11)] == [2, 2, 4, 0, 6]
    assert lhist_size(0, 10, 2) == 7
    assert lhist_index(9, 0, 10, 2) == 5
    assert lhist_index(10, 0, 10, 2) == 6           # v == max joins the overflow bucket
    # a range that is not a multiple of the step: everything from 9 up shares the last bucket
    assert [lhist_index(v, 0, 10, 3) for v in (8, 9, 10, 100)] == [3, 4, 4, 4]
    assert lhist_size(0, 10, 3) == 5
    assert [lhist_index(v, -10, 10, 5) for v in (-11, -10, -6, -5, 9, 10)] == [0, 1, 1, 2, 4, 5]


def test_numba_compiles_unchanged():
    numba = pytest.importorskip("numba")
    jit_hist = numba.njit(hist_index)
    jit_bounds = numba.njit(hist_bounds)
    jit_lhist = numba.njit(lhist_index)
    jit_size = numba.njit(hist_size)
    jit_lsize = numba.njit(lhist_size)
    for k in range(6):
        assert jit_size(k) == hist_size(k)
        for v in _samples():
            assert jit_hist(v, k) == hist_index(v, k)
        for i in range(0, hist_size(k), 7):
            assert tuple(jit_bounds(i, k)) == hist_bounds(i, k)
    for v in (-5, 0, 1, 9, 10, 11, INT64_MAX):
        assert jit_lhist(v, 0, 10, 2) == lhist_index(v, 0, 10, 2)
    assert jit_lsize(0, 10, 2) == 7


def test_the_jitted_hist_index_matches_the_reference():
    """emu.probe.runtime finds the leading bit with lzcnt; buckets.py is the reference."""
    import random

    from emu.probe import buckets, runtime

    rng = random.Random(7)
    values = [0, 1, 2, 3, 7, 8, 1023, 1024, 1 << 62, (1 << 63) - 1, -1, -(1 << 63)]
    values += [rng.randrange(-1000, 1 << 63) for _ in range(3000)]
    for k in range(6):
        for v in values:
            assert runtime.hist_index(v, k) == buckets.hist_index(v, k), (v, k)
