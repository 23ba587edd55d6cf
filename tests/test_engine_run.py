"""End-to-end runs on the plain vendor: the TDP MMU's rules, memory accounting, determinism."""
import numpy as np
import pytest

from emu.model import consts as C
from emu.model import state as st

HOST = """
[host]
memory = "4GiB"
reserved = "64MiB"
seed = 3
huge_folio_chance = {chance}
"""


def vm(backing="thp", memory="1GiB", vcpus=2, name="g"):
    return f"""
[[vm]]
name = "{name}"
vcpus = {vcpus}
memory = "{memory}"
backing = "{backing}"
"""


TOUCH = """
[[phase]]
kind = "touch"
"""


def owners_add_up(data):
    for col in ("peak", "end"):
        pass
    end = data["memory"]["end"]
    assert sum(end.values()) == data["memory"]["host_pages"]
    after = data["memory"]["after_teardown"]
    assert sum(after.values()) == data["memory"]["host_pages"]


def test_4k_backing_maps_only_4k(run_toml):
    r = run_toml(HOST.format(chance=1.0) + vm("4k") + TOUCH, check=True)
    m = r["mappings"]["installed"]
    assert m["4K"] == 262144 and m["2M"] == 0 and m["1G"] == 0
    assert r["check"]["violation"] is None
    owners_add_up(r.data)


def test_hugetlb_2m_maps_2m_and_1g_maps_1g(run_toml):
    r = run_toml(HOST.format(chance=1.0) + vm("hugetlb-2m") + TOUCH, check=True)
    assert r["mappings"]["installed"] == {"4K": 0, "2M": 512, "1G": 0}
    r = run_toml(HOST.format(chance=1.0) + vm("hugetlb-1g") + TOUCH, check=True)
    assert r["mappings"]["installed"] == {"4K": 0, "2M": 0, "1G": 1}


def test_huge_folio_chance_decides_thp_mappings(run_toml):
    r = run_toml(HOST.format(chance=0.5) + vm("thp") + TOUCH)
    m = r["mappings"]["installed"]
    assert 150 < m["2M"] < 362          # 512 regions, about half of them huge
    assert m["4K"] == (512 - m["2M"]) * 512
    assert r["counters"]["huge_folio_fallbacks"] == 512 - m["2M"]


def test_teardown_returns_every_page(run_toml):
    r = run_toml(HOST.format(chance=1.0) + vm("thp") + TOUCH)
    after = r["memory"]["after_teardown"]
    assert after["guest_shared"] == 0 and after["kvm_page_table"] == 0
    assert after["kvm_pool"] == 0
    assert after["free"] + after["host"] == r["memory"]["host_pages"]
    # while alive: 1 GiB of guest memory, one root, one PDPT, one PD
    assert r["memory"]["end"]["guest_shared"] == 262144
    assert r["memory"]["end"]["kvm_page_table"] == 3


def test_mixed_attributes_cap_mappings_at_4k(run_toml):
    text = HOST.format(chance=1.0) + vm("thp") + """
[[phase]]
kind = "convert"
direction = "to_private"
pattern = "scattered"
size = "64KiB"
""" + TOUCH
    r = run_toml(text, check=True)
    assert r["check"]["violation"] is None
    m = r["mappings"]["end"]
    # each scattered private page makes its 2M range mixed: mapped at 4K, the rest at 2M
    assert m["4K"] > 0 and m["2M"] > 0
    assert m["2M"] <= 512 - 1


def test_host_folio_split_zaps_plain_mappings(run_toml):
    text = HOST.format(chance=1.0) + vm("thp") + TOUCH + """
[[phase]]
kind = "folio_split"
count = 16
""" + TOUCH
    r = run_toml(text, check=True)
    assert r["splits"]["total"] == 0                   # plain KVM zaps, it does not split
    assert r["mappings"]["zapped"]["2M"] >= 16
    assert r["counters"]["folio_splits"] == 16
    assert r["mappings"]["end"]["4K"] == 16 * 512      # refaulted at 4K over 4K folios


def test_collapse_lets_the_next_fault_map_2m(run_toml):
    text = HOST.format(chance=1.0) + vm("thp") + TOUCH + """
[[phase]]
kind = "folio_split"
count = 8
""" + TOUCH + """
[[phase]]
kind = "folio_collapse"
count = 8
""" + TOUCH
    r = run_toml(text, check=True)
    assert r["counters"]["folio_collapses"] == 8
    assert r["merges"]["by_cause"]["collapse"]["2M"] == 8
    assert r["mappings"]["end"] == {"4K": 0, "2M": 512, "1G": 0}


def test_same_seed_same_bytes_other_seed_differs(run_toml):
    text = HOST.format(chance=0.5) + vm("thp") + """
[[phase]]
kind = "touch"
pattern = "random"
accesses = 20000
"""
    a = run_toml(text).to_json()
    b = run_toml(text).to_json()
    c = run_toml(text, seed=99).to_json()
    assert a == b
    assert a != c


def test_vcpus_contend_for_mmu_lock(run_toml):
    r = run_toml(HOST.format(chance=0.0) + vm("4k", vcpus=8) + TOUCH)
    lock = r["locks"]["mmu_lock"]
    assert lock["acquisitions"] >= 262144
    # faults take mmu_lock for read, so vCPUs do not wait for each other
    assert lock["wait_ns"] == 0


def test_check_reports_the_operation_that_broke_an_invariant(run_toml):
    def corrupt(session):
        session.S.own_pages[C.OWN_HOST] += 1

    r = run_toml(HOST.format(chance=1.0) + vm("thp") + TOUCH, check=True, session_hook=corrupt)
    v = r["check"]["violation"]
    assert v is not None and v["op_index"] == 0
    assert any("owner" in p for p in v["problems"])
