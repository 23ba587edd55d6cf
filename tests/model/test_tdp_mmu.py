"""``emu/model/tdp_mmu.py``: max mapping level, zaps, splits, merges and page-table frees."""
import dataclasses

import pytest

import emu
from emu.model import state as st
from emu.workload import load_scenario

from .scenarios import (EXACT_ZAP, GUEST_PAGES, REGIONS, phase, scenario, set_scalar, vm)


def leaves(four_k=0, two_m=0, one_g=0):
    return {"4K": four_k, "2M": two_m, "1G": one_g}


# --- max mapping level (kvm_mmu_max_mapping_level) ----------------------------------------------

@pytest.mark.parametrize("backing, expected", [
    ("4k", leaves(four_k=GUEST_PAGES)),
    ("thp", leaves(two_m=REGIONS)),
    ("hugetlb-2m", leaves(two_m=REGIONS)),
    ("hugetlb-1g", leaves(one_g=1)),
])
def test_leaf_is_never_larger_than_its_folio(run_toml, backing, expected):
    """A leaf is never larger than its folio (tdp_mmu.py docstring; plain's own max is 1G)."""
    r = run_toml(scenario(vm(backing), phase("touch")), check=True)
    assert r["mappings"]["installed"] == expected
    assert r["check"]["violation"] is None


@pytest.mark.parametrize("max_level, expected", [
    ("2M", leaves(two_m=REGIONS)),
    ("4K", leaves(four_k=GUEST_PAGES)),
])
def test_leaf_is_never_larger_than_the_vendor_maximum(run_toml, max_level, expected):
    """A leaf is never larger than the vendor's maximum (``--vendor plain:max_level=...``)."""
    r = run_toml(scenario(vm("hugetlb-1g"), phase("touch")), vendor=f"plain:max_level={max_level}")
    assert r["vendor"]["options"] == {"max_level": max_level}
    assert r["counters"]["folios_1g"] == 1
    assert r["mappings"]["installed"] == expected


@pytest.mark.parametrize("backing, expected", [
    ("thp", leaves(four_k=512, two_m=REGIONS - 1)),
    ("hugetlb-1g", leaves(four_k=512, two_m=REGIONS - 1)),
])
def test_range_mixing_private_and_shared_is_not_mapped_huge(run_toml, backing, expected):
    """A leaf never spans private and shared pages: one private page caps its 2M range at 4K."""
    # one page of region 1 made private before the guest touches its memory; on a 1G folio
    # the 1G range is mixed too, so the other regions get 2M leaves
    text = scenario(vm(backing), phase("convert", direction="to_private", pattern="scattered",
                                       size="4KiB", region=["2MiB", "4MiB"]), phase("touch"))
    r = run_toml(text, check=True)
    assert r["check"]["violation"] is None
    assert r["mappings"]["end"] == expected


def test_leaf_is_aligned_to_its_size(run_toml):
    """A 2M leaf maps the aligned 2M range around the faulting page, not one starting there."""
    # 2 MiB touched from 1 MiB: a fault in region 0, then one in region 1
    text = scenario(phase("touch", offset="1MiB", size="2MiB", accept_on_touch=False))
    r = run_toml(text)
    assert r["counters"]["faults"] == 2
    assert r["mappings"]["installed"] == leaves(two_m=2)


def test_leaf_never_extends_past_the_end_of_the_vm(plugins, tmp_path):
    """A VM whose size is not a multiple of 2M maps its tail at 4K (KVM: inside the memslot)."""
    # the scenario schema only allows multiples of 2 MiB, so the VM is resized after parsing
    path = tmp_path / "s.toml"
    path.write_text(scenario(phase("touch", accept_on_touch=False)))
    parsed = load_scenario(path, plugins.phase_kinds)
    tail = dataclasses.replace(parsed.vms[0], memory=(1 << 30) + (1 << 20))
    r = emu.run(dataclasses.replace(parsed, vms=(tail,)), "plain", plugins=plugins, check=True)
    assert r["check"]["violation"] is None
    assert r["mappings"]["installed"] == leaves(four_k=256, two_m=REGIONS)


def test_range_a_vendor_inhibited_is_not_mapped_huge(run_toml):
    """A 2M range flagged ``R2_NO_HUGE`` (e.g. TDX GUEST_INHIBIT) is mapped at 4K."""
    def inhibit_region_3(session):
        session.S.r2_flags[3] |= st.R2_NO_HUGE

    r = run_toml(scenario(phase("touch")), session_hook=inhibit_region_3)
    assert r["mappings"]["installed"] == leaves(four_k=512, two_m=REGIONS - 1)


def test_each_vm_has_its_own_page_tables(run_toml):
    """Every VM has its own root, PDPT and PDs, even where VM slots share a 512G range."""
    r = run_toml(scenario(vm(name="a"), vm(name="b"), phase("touch")), teardown=False)
    assert r["counters"]["pt_pages_allocated"] == 2 * 3
    assert r["memory"]["end"]["kvm_page_table"] == 2 * 3


# --- zaps and splits ----------------------------------------------------------------------------

def test_plain_zaps_huge_leaves_crossing_the_range_whole(run_toml):
    """Plain KVM zaps a huge leaf the converted range crosses and refaults it: no splits."""
    # 2 MiB converted from 1 MiB: the range crosses the 2M leaves of regions 0 and 1; the guest
    # then touches the 512 converted pages, whose region folios the discard split
    text = scenario(phase("touch"), phase("convert", direction="to_shared", pattern="ranges",
                                          range_size="2MiB", size="2MiB", region=["1MiB", "3MiB"]))
    r = run_toml(text, check=True)
    assert r["splits"]["total"] == 0
    assert r["mappings"]["zapped"]["2M"] == 2 + (REGIONS - 2)     # + teardown of the others
    assert r["mappings"]["end"] == leaves(four_k=512, two_m=REGIONS - 2)


def test_host_folio_split_zaps_plain_mappings(run_toml):
    """A 2M leaf over a folio the host splits is zapped (plain) and refaults at 4K."""
    text = scenario(phase("touch"), phase("folio_split", count=16), phase("touch"))
    r = run_toml(text, check=True, teardown=False)
    assert r["splits"]["total"] == 0
    assert r["counters"]["folio_splits"] == 16
    assert r["mappings"]["zapped"] == leaves(two_m=16)
    assert r["mappings"]["end"] == leaves(four_k=16 * 512, two_m=REGIONS - 16)


@pytest.mark.parametrize("backing, split", [
    ("thp", {"2M": 1}),
    ("hugetlb-1g", {"2M": 1, "1G": 1}),
])
def test_exact_zap_splits_the_crossing_leaf_down_to_4k(run_toml, backing, split):
    """With ``exact_zap`` a huge leaf crossing the range is split, never zapped whole."""
    # plain with the core's exact_zap knob set (what TDX and SNP declare): no plain scenario
    # splits. One page of the last region is converted, then touched again
    text = scenario(vm(backing), phase("touch"), phase(
        "convert", direction="to_shared", pattern="scattered", size="4KiB",
        region=["1022MiB", "1GiB"]))
    r = run_toml(text, check=True, session_hook=set_scalar(EXACT_ZAP, 1), teardown=False)
    assert r["check"]["violation"] is None
    assert r["splits"]["by_cause"] == {"convert": split}
    assert r["mappings"]["zapped"] == leaves(four_k=1)
    # 511 pages keep their 4K leaves, the converted one is mapped again
    assert r["mappings"]["end"] == leaves(four_k=512, two_m=REGIONS - 1)
    # one new page table per split, from the VM's split cache
    assert r["pools"]["split_page_cache"]["taken"] == len(split)
    assert r["memory"]["end"]["kvm_page_table"] == 3 + 1


# --- merges and page-table frees ----------------------------------------------------------------

RCU_COSTS = ("free=150", "rcu_free=100")


def test_recovery_merges_a_full_4k_table_over_a_2m_folio(run_toml):
    """Huge-page recovery: 512 4K leaves over a 2M folio become one 2M leaf (cause recovery)."""
    # the boot image (4 MiB) is loaded page by page at 4K over two 2M folios
    text = scenario(phase("boot"), phase("recover"))
    r = run_toml(text, check=True, costs=RCU_COSTS, teardown=False)
    assert r["merges"] == {"total": 2, "by_cause": {"recovery": {"2M": 2}}, "refused": 0}
    # installed: 1024 image pages, 510 faults at 2M, the 2 merged leaves
    assert r["mappings"]["installed"] == leaves(four_k=1024, two_m=REGIONS)
    assert r["mappings"]["end"] == leaves(two_m=REGIONS)
    # the two 4K tables go through RCU: the RCU context pays the free and the callback
    assert (r["counters"]["rcu_frees"], r["counters"]["pt_pages_freed"]) == (2, 2)
    assert r["time"]["by_context"]["rcu_callback"]["busy_ns"] == 2 * (150 + 100)
    assert r["memory"]["end"]["kvm_page_table"] == 3


@pytest.mark.parametrize("backing, vendor", [("4k", "plain"), ("thp", "plain:max_level=4K")])
def test_recovery_merges_nothing_the_max_level_forbids(run_toml, backing, vendor):
    """Recovery re-checks the max level: no merge over 4K folios or above the vendor max."""
    r = run_toml(scenario(vm(backing), phase("boot"), phase("recover")), vendor=vendor,
                 teardown=False)
    # every region holds 512 4K leaves; none may be merged
    assert r["merges"] == {"total": 0, "by_cause": {}, "refused": REGIONS}
    assert r["counters"]["rcu_frees"] == 0
    assert r["mappings"]["end"] == leaves(four_k=GUEST_PAGES)


def test_fault_at_2m_replaces_a_partly_populated_table(run_toml):
    """A fault that may map 2M over a table of 4K leaves installs the huge leaf over it."""
    # a 4100 KiB image: region 2 has one 4K leaf over its 2M folio when the guest accepts the
    # rest; the fault there replaces the table (cause fault), recovery merges regions 0 and 1
    text = scenario(phase("boot", image="4100KiB"), phase("recover"))
    r = run_toml(text, check=True, teardown=False)
    assert r["merges"]["by_cause"] == {"fault": {"2M": 1}, "recovery": {"2M": 2}}
    assert r["counters"]["page_tables_replaced"] == 1
    assert r["counters"]["rcu_frees"] == 3
    assert r["mappings"]["end"] == leaves(two_m=REGIONS)


def test_collapse_lets_the_next_fault_map_2m(run_toml):
    """After khugepaged's collapse, the next fault frees the emptied table and maps 2M."""
    text = scenario(phase("touch"), phase("folio_split", count=8), phase("touch"),
                    phase("folio_collapse", count=8), phase("touch"))
    r = run_toml(text, check=True, teardown=False)
    assert r["counters"]["folio_collapses"] == 8
    assert r["merges"]["by_cause"] == {"collapse": {"2M": 8}}
    assert r["counters"]["page_tables_replaced"] == 8
    # the 8 4K tables the refaults after the host splits made, freed through RCU
    assert (r["counters"]["pt_pages_allocated"], r["counters"]["rcu_frees"]) == (3 + 8, 8)
    assert r["mappings"]["end"] == leaves(two_m=REGIONS)
