"""Generation: determinism, operation counts, vCPU rotation, lazy acceptance, churn slots, ranges."""
import copy
import itertools
import time

import numpy as np
import pytest

from emu.builtin_phases import emu_phase_kinds
from emu.model.consts import (F_SHARED, F_WRITE, LVL_2M, LVL_4K, OP_ACCEPT, OP_ACCESS, OP_BUILD_ADD,
                              OP_CONVERT, OP_FOLIO_COLLAPSE, OP_FOLIO_SPLIT, OP_IDLE, OP_PUNCH,
                              OP_RECOVER, OP_VCPU_CREATE, OP_VM_CREATE, OP_VM_DESTROY)
from emu.model.layout import OP_DTYPE, PAGES_1G
from emu.records import PhaseKind
from emu.workload import build_workload, ops, parse_scenario, place_ranges, rechunk, vm_create_ops

KINDS = {k.name: k for k in emu_phase_kinds()}
GiB_PAGES = PAGES_1G


def workload(phases, vms=None, host=None, kinds=KINDS):
    data = {"host": host or {"memory": "64GiB", "seed": 1},
            "vm": vms or [{"name": "td", "memory": "1GiB", "vcpus": 4}],
            "phase": phases}
    return build_workload(parse_scenario(copy.deepcopy(data), kinds), kinds)


def of(a, *kinds):
    return a[np.isin(a["kind"], kinds)]


def test_stream_starts_with_vm_and_vcpu_creates():
    w = workload([], vms=[{"name": "a", "memory": "2GiB", "vcpus": 3},
                          {"name": "b", "memory": "4MiB", "count": 2, "vcpus": 2},
                          {"name": "t", "memory": "2MiB", "start": False}])
    a = w.to_array()
    assert a["kind"].tolist() == [OP_VM_CREATE, 3, 3, 3, OP_VM_CREATE, 3, 3, OP_VM_CREATE, 3, 3]
    assert a["vm"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a["vcpu"].tolist() == [-1, 0, 1, 2, -1, 0, 1, -1, 0, 1]
    assert w.vm_names == [["a"], ["b-0"], ["b-1"]]
    slots = w.layout.slots
    assert [s.memory_pages for s in slots] == [2 * GiB_PAGES, 1024, 1024]
    assert [s.gfn_base for s in slots] == [0, 2 * GiB_PAGES, 3 * GiB_PAGES]   # 1 GiB aligned
    assert [s.vcpu_base for s in slots] == [0, 3, 5]
    assert w.layout.host_pages == 64 * GiB_PAGES and w.layout.seed == 1
    assert w.layout.host_reserved_pages == 656 * 256
    assert w.estimated_ops == len(a) == 10


@pytest.mark.parametrize("level, accepts", [("4K", 262144 - 1024), ("2M", 512 - 2)])
def test_boot_eager_counts(level, accepts):
    w = workload([{"kind": "boot", "accept_level": level}])
    a = w.to_array()
    adds, acc = of(a, OP_BUILD_ADD), of(a, OP_ACCEPT)
    assert len(adds) == 1024 and adds["gfn"].tolist() == list(range(1024))
    assert (adds["count"] == 1).all() and (adds["vcpu"] == -1).all()
    assert len(acc) == accepts == w.estimated_ops - 5 - 1024
    lvl = LVL_4K if level == "4K" else LVL_2M
    assert (acc["level"] == lvl).all() and (acc["count"] == 1).all()
    assert acc["gfn"][0] == 1024 and np.all(np.diff(acc["gfn"]) == (1 if lvl == LVL_4K else 512))
    assert acc["gfn"][-1] == (262143 if lvl == LVL_4K else 262144 - 512)


def test_boot_unaligned_image_accepts_ragged_edge_at_4k():
    a = workload([{"kind": "boot", "image": "3MiB"}]).to_array()
    acc = of(a, OP_ACCEPT)
    head = acc[acc["level"] == LVL_4K]
    assert head["gfn"].tolist() == list(range(768, 1024))
    assert (acc[acc["level"] == LVL_2M]["gfn"] % 512 == 0).all()
    assert len(acc) == 256 + 510


def test_guest_ops_rotate_over_vcpus():
    a = workload([{"kind": "boot"}, {"kind": "touch", "pattern": "random", "accesses": 1000}]).to_array()
    guest = of(a, OP_ACCEPT, OP_ACCESS)
    assert guest["vcpu"].tolist() == [i % 4 for i in range(len(guest))]


def test_same_seed_same_bytes_different_seed_differs():
    phases = [{"kind": "boot", "accept": "lazy", "lazy_accept": "64MiB"},
              {"kind": "touch", "pattern": "zipf", "accesses": 20000},
              {"kind": "convert", "size": "8MiB"}, {"kind": "folio_split", "count": 5}]
    one = [b.tobytes() for b in workload(phases).batches(4096)]
    two = [b.tobytes() for b in workload(phases).batches(4096)]
    assert one == two
    other = b"".join(b.tobytes() for b in workload(phases, host={"memory": "64GiB", "seed": 2}).batches(4096))
    assert b"".join(one) != other
    # the stream does not depend on how it is cut into batches
    assert b"".join(one) == b"".join(b.tobytes() for b in workload(phases).batches(1 << 20))


@pytest.mark.parametrize("size", [1, 7, 4096, 100_000])
def test_batches_never_exceed_batch_size(size):
    w = workload([{"kind": "boot", "accept_level": "4K"}, {"kind": "convert", "size": "4MiB"}])
    sizes = [len(b) for b in w.batches(size)]
    assert max(sizes) <= size and all(s == size for s in sizes[:-1])
    assert sum(sizes) == w.estimated_ops
    assert all(b.dtype == OP_DTYPE for b in w.batches(size))


def test_rechunk_handles_empty_and_large_pieces():
    parts = [ops(OP_ACCESS, 0, np.arange(n)) for n in (0, 5, 0, 20, 1, 3)]
    out = list(rechunk(iter(parts), 8))
    assert [len(b) for b in out] == [8, 8, 8, 5]
    assert np.concatenate(out)["gfn"].tolist() == [*range(5), *range(20), 0, 0, 1, 2]


def _assert_accepted_before_access(a, regions, boot_prefix_regions=0, per_region=1):
    acc, access = of(a, OP_ACCEPT), of(a, OP_ACCESS)
    idx = np.arange(len(a))
    acc_idx, access_idx = idx[np.isin(a["kind"], [OP_ACCEPT])], idx[a["kind"] == OP_ACCESS]
    first_accept = np.full(regions, np.iinfo(np.int64).max)
    np.minimum.at(first_accept, acc["gfn"] // 512, acc_idx)
    first_accept[:boot_prefix_regions] = -1
    first_access = np.full(regions, np.iinfo(np.int64).max)
    np.minimum.at(first_access, access["gfn"] // 512, access_idx)
    touched = first_access < np.iinfo(np.int64).max
    assert (first_accept[touched] < first_access[touched]).all()
    per = np.bincount(acc["gfn"] // 512, minlength=regions)
    assert (per[boot_prefix_regions:] <= per_region).all()   # nothing accepted twice


@pytest.mark.parametrize("pattern", ["sequential", "random", "zipf"])
@pytest.mark.parametrize("level", ["2M", "4K"])
def test_lazy_accept_comes_before_first_touch(pattern, level):
    w = workload([{"kind": "boot", "accept": "lazy", "lazy_accept": "64MiB"},
                  {"kind": "touch", "pattern": pattern, "accesses": 30000, "accept_level": level}])
    a = w.to_array()
    per = 1 if level == "2M" else 512
    _assert_accepted_before_access(a, 512, boot_prefix_regions=32, per_region=per)
    boot_end = 5 + 1024 + 30                    # prologue, image, 30 x 2M accepts of the prefix
    touch_acc = of(a[boot_end:], OP_ACCEPT)
    chunks = touch_acc["gfn"] // 1024
    # lazily accepted memory comes in whole 4 MiB chunks
    assert (np.bincount(chunks)[np.unique(chunks)] == 2 * per).all()
    # the vCPU that accepts is the one whose access comes next
    acc_idx = np.flatnonzero(a["kind"] == OP_ACCEPT)
    acc_idx = acc_idx[acc_idx >= boot_end]
    access_idx = np.flatnonzero(a["kind"] == OP_ACCESS)
    nxt = access_idx[np.searchsorted(access_idx, acc_idx)]
    assert (a["vcpu"][nxt] == a["vcpu"][acc_idx]).all()
    assert (a["gfn"][nxt] // 1024 == a["gfn"][acc_idx] // 1024).all()
    if pattern == "sequential":
        # 30000 pages reach region 58, so chunks up to region 59 are accepted after the prefix
        assert len(touch_acc) == (60 - 32) * per
        assert w.estimated_ops == len(a)
    assert w.estimated_ops >= len(a)


def test_touch_shared_and_read_flags_and_no_accept():
    a = workload([{"kind": "boot", "accept": "lazy"},
                  {"kind": "touch", "shared": True, "write": False, "accesses": 100, "offset": "512MiB"}]).to_array()
    access = of(a, OP_ACCESS)
    assert (access["flags"] == F_SHARED).all()
    assert access["gfn"].tolist() == list(range(131072, 131172))
    assert len(of(a, OP_ACCEPT)) == 127 - 1   # only the boot's 256 MiB


def test_touch_without_accept_on_touch_emits_no_accepts():
    a = workload([{"kind": "touch", "accept_on_touch": False, "accesses": 500, "pattern": "random"}]).to_array()
    assert len(of(a, OP_ACCEPT)) == 0 and (of(a, OP_ACCESS)["flags"] == F_WRITE).all()


def test_zipf_is_skewed_and_in_bounds():
    a = workload([{"kind": "boot"}, {"kind": "touch", "pattern": "zipf", "accesses": 50000,
                                    "size": "64MiB", "offset": "4MiB"}]).to_array()
    g = of(a, OP_ACCESS)["gfn"]
    assert g.min() >= 1024 and g.max() < 1024 + 16384
    counts = np.sort(np.bincount(g))[::-1]
    assert counts[0] > 50 * np.median(counts[counts > 0])


def test_convert_ranges_do_not_overlap_and_stay_inside():
    w = workload([{"kind": "boot"}, {"kind": "convert", "pattern": "ranges", "range_size": "2MiB",
                                     "size": "256MiB", "region": ["128MiB", "768MiB"]}])
    a = w.to_array()
    conv = of(a, OP_CONVERT)
    to_shared, to_private = conv[conv["flags"] == F_SHARED], conv[conv["flags"] == 0]
    assert len(to_shared) == len(to_private) == 128
    assert (conv["vcpu"] == -1).all() and (conv["count"] == 512).all()
    starts = np.sort(to_shared["gfn"])
    assert starts[0] >= 128 * 256 and starts[-1] + 512 <= 768 * 256
    assert (np.diff(starts) >= 512).all()
    assert sorted(to_private["gfn"].tolist()) == starts.tolist()
    # per range: convert to shared, 512 shared accesses, convert back, 512 accepts at 4K
    i = int(np.flatnonzero(a["kind"] == OP_CONVERT)[0])
    block = a[i:i + 1026]
    g = block["gfn"][0]
    assert block["kind"][1:513].tolist() == [OP_ACCESS] * 512 and (block["flags"][1:513] == F_SHARED).all()
    assert block["gfn"][1:513].tolist() == list(range(g, g + 512))
    assert block["kind"][513] == OP_CONVERT and block["flags"][513] == 0
    assert (block["kind"][514:] == OP_ACCEPT).all() and (block["level"][514:] == LVL_4K).all()
    assert w.estimated_ops == len(a)


def test_convert_accepts_whole_regions_at_2m_when_asked():
    """accept_level = "2M": pages made private again are accepted one op per whole aligned 2M
    region of the range and at 4K at its edges; the 4K default is what the phase always did."""
    phase = {"kind": "convert", "pattern": "ranges", "range_size": "4MiB", "align": "4KiB",
             "size": "8MiB", "region": ["0MiB", "512MiB"]}
    base = workload([phase]).to_array()
    two = workload([{**phase, "accept_level": "2M"}]).to_array()
    assert np.array_equal(of(base, OP_CONVERT), of(two, OP_CONVERT))
    for key in ("gfn", "flags"):
        assert np.array_equal(of(base, OP_ACCESS)[key], of(two, OP_ACCESS)[key])
    acc = of(two, OP_ACCEPT)
    big = acc[acc["level"] == LVL_2M]
    small = acc[acc["level"] == LVL_4K]
    starts = of(two, OP_CONVERT)["gfn"][::2]
    # each unaligned 4 MiB range holds one whole 2M region (two when it happens to be aligned)
    whole = [(-(-s // 512) * 512, (s + 1024) // 512 * 512) for s in starts.tolist()]
    assert len(big) == sum((b - a) // 512 for a, b in whole)
    assert (big["gfn"] % 512 == 0).all()
    assert len(small) + 512 * len(big) == 2048
    covered = np.concatenate([small["gfn"]] + [g + np.arange(512) for g in big["gfn"]])
    assert np.array_equal(np.sort(covered), np.sort(of(base, OP_ACCEPT)["gfn"]))
    # the guest operations still rotate over the vCPUs without a gap
    guest = two[np.isin(two["kind"], (OP_ACCESS, OP_ACCEPT))]
    assert np.array_equal(np.diff(guest["vcpu"]) % 4, np.ones(len(guest) - 1) % 4)


@pytest.mark.parametrize("n, length, lo, hi, align", [
    (100, 1, 0, 100, 1), (1000, 512, 7, 1 << 20, 1), (50, 512, 0, 1 << 16, 512), (1, 5, 3, 8, 1),
    (300, 3, 1000, 2000, 1)])
def test_place_ranges(n, length, lo, hi, align):
    s = np.sort(place_ranges(np.random.default_rng(0), n, length, lo, hi, align))
    assert len(s) == n and s[0] >= lo and s[-1] + length <= hi
    assert (np.diff(s) >= length).all() and (s % align == 0).all()


def test_place_ranges_that_cannot_fit():
    with pytest.raises(ValueError):
        place_ranges(np.random.default_rng(0), 11, 10, 0, 100)


def test_to_private_takes_back_what_was_shared():
    a = workload([{"kind": "boot"},
                  {"kind": "convert", "direction": "to_shared", "pattern": "ranges", "size": "16MiB"},
                  {"kind": "convert", "direction": "to_private", "pattern": "ranges", "size": "8MiB"}]).to_array()
    conv = of(a, OP_CONVERT)
    shared = set(conv[conv["flags"] == F_SHARED]["gfn"].tolist())
    private = conv[conv["flags"] == 0]["gfn"].tolist()
    assert len(shared) == 8 and len(private) == 4 and set(private) <= shared


def test_scattered_convert_and_punch():
    a = workload([{"kind": "boot"}, {"kind": "convert", "direction": "to_shared", "size": "1MiB"},
                  {"kind": "punch", "size": "8MiB"}, {"kind": "punch", "pattern": "scattered", "size": "64KiB"}]).to_array()
    conv = of(a, OP_CONVERT)
    assert len(conv) == 256 and (conv["count"] == 1).all() and len(set(conv["gfn"].tolist())) == 256
    punch = of(a, OP_PUNCH)
    assert (punch["vcpu"] == -1).all()
    assert sorted(punch["count"].tolist()) == [1] * 16 + [512] * 4


def test_folio_split_then_collapse_picks_split_regions():
    a = workload([{"kind": "folio_split", "count": 20}, {"kind": "folio_collapse", "count": 8},
                  {"kind": "folio_collapse", "count": 100}]).to_array()
    split, coll = of(a, OP_FOLIO_SPLIT), of(a, OP_FOLIO_COLLAPSE)
    assert len(split) == 20 and len(set(split["gfn"].tolist())) == 20 and (split["gfn"] % 512 == 0).all()
    assert len(coll) == 20 and set(coll["gfn"].tolist()) == set(split["gfn"].tolist())
    assert (split["vcpu"] == -1).all()


def test_idle_and_recover_one_op_per_vm():
    a = workload([{"kind": "idle", "duration": "3ms"}, {"kind": "recover", "repeat": 2}],
                 vms=[{"name": "v", "memory": "1GiB", "count": 3}]).to_array()
    idle, rec = of(a, OP_IDLE), of(a, OP_RECOVER)
    assert idle["vm"].tolist() == [0, 1, 2] and (idle["arg"] == 3_000_000).all()
    assert rec["vm"].tolist() == [0, 1, 2, 0, 1, 2] and (rec["count"] == GiB_PAGES).all()
    assert (rec["gfn"] == 0).all()


def test_multi_vm_phases_interleave_operation_by_operation():
    a = workload([{"kind": "touch", "accesses": 100, "accept_on_touch": False}],
                 vms=[{"name": "v", "memory": "1GiB", "count": 2}]).to_array()
    assert of(a, OP_ACCESS)["vm"].tolist() == [0, 1] * 100


def test_churn_reuses_slots():
    w = workload([{"kind": "churn", "template": "t", "count": 7, "concurrency": 2, "touch": "8MiB",
                   "image": "1MiB"}],
                 vms=[{"name": "resident", "memory": "1GiB", "vcpus": 2},
                      {"name": "t", "memory": "64MiB", "vcpus": 3, "start": False}])
    assert len(w.layout.slots) == 1 + 2
    assert [s.memory_pages for s in w.layout.slots[1:]] == [16384, 16384]
    assert w.vm_names[1] == ["t.p0.0", "t.p0.2", "t.p0.4", "t.p0.6"]
    assert w.vm_names[2] == ["t.p0.1", "t.p0.3", "t.p0.5"]
    a = w.to_array()
    assert w.estimated_ops == len(a)
    life = a[np.isin(a["kind"], [OP_VM_CREATE, OP_VM_DESTROY])]
    for slot in (1, 2):
        k = life[life["vm"] == slot]["kind"].tolist()
        assert k == [OP_VM_CREATE, OP_VM_DESTROY] * len(w.vm_names[slot])   # never two live in a slot
    assert len(of(a, OP_VM_CREATE)) == 1 + 7 and len(of(a, OP_VCPU_CREATE)) == 2 + 7 * 3
    churned = a[a["vm"] > 0]
    acc = of(churned, OP_ACCEPT)
    assert len(acc) == 7 * (256 + 3)                        # 1 MiB ragged edge at 4K, then 3 x 2M
    assert len(of(churned, OP_ACCESS)) == 7 * 2048
    assert len(of(churned, OP_BUILD_ADD)) == 7 * 256
    # with concurrency 2, both lanes' guest operations alternate
    first_two = a[np.isin(a["vm"], [1, 2]) & (a["kind"] == OP_ACCESS)]["vm"][:10]
    assert set(first_two.tolist()) == {1, 2}


def test_churn_of_many_vms_needs_only_concurrency_slots():
    w = workload([{"kind": "churn", "template": "t", "count": 1000, "concurrency": 2, "touch": "4KiB",
                   "image": "4KiB"}],
                 vms=[{"name": "t", "memory": "2MiB", "start": False}])
    assert len(w.layout.slots) == 2
    assert sum(len(n) for n in w.vm_names) == 1000
    assert len(of(w.to_array(), OP_VM_DESTROY)) == 1000


def test_repeat_runs_the_phase_again_with_fresh_draws():
    a = workload([{"kind": "touch", "pattern": "random", "accesses": 100, "repeat": 3,
                   "accept_on_touch": False}]).to_array()
    g = of(a, OP_ACCESS)["gfn"]
    assert len(g) == 300 and g[:100].tolist() != g[100:200].tolist()


def test_plugin_generator_that_ignores_planning_still_works():
    def gen(fields, ctx):
        for vm in ctx.vms:
            yield ops(OP_IDLE, vm.slot, arg=fields["n"])
            slot = ctx.create_vm("td", name=f"extra{fields['n']}")
            yield vm_create_ops(ctx.vm(slot))
            yield ops(OP_VM_DESTROY, slot)
            ctx.destroy_vm(slot)

    kind = PhaseKind("custom", "test", {"n": {"type": "int", "doc": "n", "default": 1}}, gen)
    kinds = {**KINDS, "custom": kind}
    w = workload([{"kind": "custom", "n": 5}, {"kind": "custom", "n": 6}], kinds=kinds)
    assert w.vm_names == [["td"], ["extra5", "extra6"]]
    a = w.to_array()
    assert len(a) == w.estimated_ops
    assert of(a, OP_VM_CREATE)["vm"].tolist() == [0, 1, 1]


def test_huge_random_touch_is_generated_lazily():
    w = workload([{"kind": "boot", "accept": "lazy"},
                  {"kind": "touch", "pattern": "random", "accesses": 200_000_000}],
                 host={"memory": "1TiB"}, vms=[{"name": "big", "memory": "1000GiB", "vcpus": 64}])
    assert w.estimated_ops > 200_000_000
    t = time.perf_counter()
    first = list(itertools.islice(w.batches(1 << 16), 20))
    assert time.perf_counter() - t < 5
    assert all(len(b) == 1 << 16 for b in first)


def test_generation_speed_of_a_4k_boot():
    w = workload([{"kind": "boot", "accept_level": "4K"}], vms=[{"name": "td", "memory": "8GiB", "vcpus": 8}])
    t = time.perf_counter()
    n = sum(len(b) for b in w.batches())
    dt = time.perf_counter() - t
    assert n == 2 * 1024 * 1024 + 9
    assert dt < 1.5, f"{dt / n * 1e9:.0f} ns per op"   # ~15 ns/op measured; be lenient on busy machines
