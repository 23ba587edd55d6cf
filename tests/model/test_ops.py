"""``emu/model/ops.py``: what each operation does (convert, punch, host folio operations, idle,
VM lifecycle and churn)."""
from .scenarios import (FREE_PAGES, GUEST_PAGES, PRIVATE_MEMORY, REGIONS, RESERVED_PAGES,
                        nonzero, phase, scenario, set_scalar, vm)


def test_convert_zaps_the_range_and_discards_its_backing(run_toml):
    """A conversion zaps the range under mmu_lock, then the VMM discards the old side's pages."""
    # region 1 made shared as a whole; the guest then touches its 512 pages again
    text = scenario(phase("touch"), phase(
        "convert", direction="to_shared", pattern="ranges", range_size="2MiB", align="2MiB",
        size="2MiB", region=["2MiB", "4MiB"]))
    r = run_toml(text, teardown=False)
    assert r["counters"]["converted_pages"] == 512
    assert r["mappings"]["zapped"] == {"4K": 0, "2M": 1, "1G": 0}
    # its folio was freed whole (one free) and the refault got a new one
    assert (r["counters"]["frees"], r["counters"]["folios_2m"]) == (1, REGIONS + 1)
    assert r["mappings"]["end"] == {"4K": 0, "2M": REGIONS, "1G": 0}


def test_punch_leaves_shared_memory_alone(run_toml):
    """A guest_memfd hole punch frees private memory only; plain memory is all VMM memory."""
    text = scenario(phase("touch"), phase("punch", size="64MiB"))
    r = run_toml(text, teardown=False)
    assert r["counters"]["punched_pages"] == 0
    assert r["mappings"]["zapped"] == {"4K": 0, "2M": 0, "1G": 0}
    assert r["memory"]["end"]["guest_shared"] == GUEST_PAGES


def test_punch_frees_private_memory_only(run_toml):
    """A hole punch zaps and frees the private pages of its range; shared pages stay mapped."""
    # plain with the core's private_memory knob set (guests start private, as TDX and SNP
    # declare). Region 0 is made shared, then regions 0 and 1 are punched
    text = scenario(
        phase("touch"),
        phase("convert", direction="to_shared", pattern="ranges", range_size="2MiB", align="2MiB",
              size="2MiB", region=["0MiB", "2MiB"]),
        phase("punch", pattern="ranges", range_size="4MiB", align="2MiB", size="4MiB",
              region=["0MiB", "4MiB"]))
    r = run_toml(text, check=True, session_hook=set_scalar(PRIVATE_MEMORY, 1), teardown=False)
    assert r["check"]["violation"] is None
    assert r["counters"]["faults_private"] == REGIONS
    assert r["counters"]["punched_pages"] == 512
    end = r["memory"]["end"]
    assert (end["guest_private"], end["guest_shared"]) == (GUEST_PAGES - 2 * 512, 512)
    # zapped: region 0's private leaf by the conversion, region 1's by the punch
    assert r["mappings"]["zapped"] == {"4K": 0, "2M": 2, "1G": 0}
    assert r["mappings"]["end"] == {"4K": 0, "2M": REGIONS - 1, "1G": 0}


def test_host_does_not_split_hugetlb_folios(run_toml):
    """The host splits THP folios only; hugetlb folios and their 2M leaves stay."""
    text = scenario(vm("hugetlb-2m"), phase("touch"), phase("folio_split", count=16))
    r = run_toml(text, teardown=False)
    assert (r["counters"]["folio_splits"], r["counters"]["folio_splits_refused"]) == (0, 16)
    assert r["mappings"]["zapped"] == {"4K": 0, "2M": 0, "1G": 0}


def test_khugepaged_collapses_thp_memory_only(run_toml):
    """khugepaged does not collapse memory that is not THP: a 4K-backed guest stays 4K."""
    text = scenario(vm("4k"), phase("touch"), phase("folio_collapse", pick="any", count=REGIONS),
                    phase("touch"))
    r = run_toml(text, check=True)
    assert (r["counters"]["folio_collapses"], r["counters"]["collapses_refused"]) == (0, REGIONS)
    assert r["counters"]["folios_2m"] == 0
    assert r["mappings"]["installed"] == {"4K": GUEST_PAGES, "2M": 0, "1G": 0}


def test_idle_advances_vcpu_clocks_without_charging_work(run_toml):
    """Idle: the VM's vCPUs run for the duration; their clocks move, their busy time does not."""
    base = scenario(vm(vcpus=2), phase("touch"))
    before = run_toml(base, teardown=False)["time"]
    after = run_toml(base + phase("idle", duration="10ms"), teardown=False)["time"]
    b, a = before["by_context"]["vcpu"], after["by_context"]["vcpu"]
    assert a["clock_max_ns"] - b["clock_max_ns"] == 10_000_000
    assert a["busy_ns"] == b["busy_ns"]
    assert after["by_context"]["vmm"] == before["by_context"]["vmm"]
    assert after["virtual_ns"] - before["virtual_ns"] == 10_000_000


def test_teardown_returns_every_page(run_toml):
    """Destroying a VM zaps it, frees its tables (through RCU, the root directly) and memory."""
    r = run_toml(scenario(phase("touch")))
    mem = r["memory"]
    # while alive: 1 GiB of guest memory, one root, one PDPT, one PD
    assert (mem["end"]["guest_shared"], mem["end"]["kvm_page_table"]) == (GUEST_PAGES, 3)
    assert nonzero(mem["after_teardown"]) == {"free": FREE_PAGES, "host": RESERVED_PAGES}
    counters = r["counters"]
    assert (counters["pt_pages_allocated"], counters["pt_pages_freed"]) == (3, 3)
    assert counters["rcu_frees"] == 2
    assert r["operations"]["teardown"] == 1


def test_vm_churn_leaks_nothing(run_toml):
    """Creating and destroying VMs leaves only free and host memory behind."""
    text = scenario(vm("thp", memory="256MiB", vcpus=2, name="t", start=False),
                    phase("churn", template="t", count=5, concurrency=2, touch="64MiB"))
    r = run_toml(text, check=True)
    assert r["check"]["violation"] is None
    assert (r["counters"]["vms_created"], r["counters"]["vms_destroyed"]) == (5, 5)
    # every churned VM is gone by the end of the phase: nothing left for the final teardown
    assert r["operations"]["teardown"] == 0
    for col in ("end", "after_teardown"):
        assert nonzero(r["memory"][col]) == {"free": FREE_PAGES, "host": RESERVED_PAGES}
    # each VM made its own root, PDPT, PD and the two 4K tables of its 4 MiB image
    counters = r["counters"]
    assert (counters["pt_pages_allocated"], counters["pt_pages_freed"]) == (5 * 5, 5 * 5)
    assert all(p["held_pages"] == 0 for p in r["pools"].values())
    assert r["errors"]["total"] == 0
