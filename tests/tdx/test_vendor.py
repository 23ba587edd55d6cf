"""The tdx vendor end to end: the reference arithmetic, what each policy keeps, --check's
refcount rule. One compiled driver serves every test (options are runtime data)."""
import pytest

HOST = """
[host]
memory = "{host}"
seed = 5
"""

TD = """
[[vm]]
name = "td"
vcpus = {vcpus}
memory = "{memory}"
"""

BOOT = """
[[phase]]
kind = "boot"
image = "4MiB"
accept = "lazy"
lazy_accept = "32MiB"
accept_level = "2M"

[[phase]]
kind = "touch"
pattern = "random"
accesses = 3000
accept_level = "2M"

[[phase]]
kind = "convert"
direction = "round_trip"
pattern = "scattered"
size = "64KiB"
"""


def scenario(host="2GiB", vcpus=2, memory="256MiB"):
    return HOST.format(host=host) + TD.format(vcpus=vcpus, memory=memory) + BOOT


def test_static_pamt_is_0_39_percent_of_host_memory(run_toml):
    """tdx.md §1.1: 16-byte PAMT entries per 4K page, about 0.39% of RAM, reserved at boot."""
    r = run_toml(scenario(host="4GiB"), vendor="tdx:pamt=static")
    rep = r["vendor_report"]
    assert rep["pamt_static_percent"] == pytest.approx(0.3906, abs=0.002)
    assert r["memory"]["after_teardown"]["static_metadata"] == rep["pamt_static_pages"]


def test_dynamic_pamt_static_part_is_0_004_percent(run_toml):
    """tdx.md §1.2: bitmap + 2M level, about 0.004% of RAM; pairs come and go at run time."""
    r = run_toml(scenario(host="4GiB"), vendor="tdx", check=True)
    rep = r["vendor_report"]
    assert rep["pamt_static_percent"] == pytest.approx(0.0038, abs=0.0005)
    assert r["check"]["violation"] is None
    assert rep["pamt_pairs_peak"] > 0


def test_running_vcpu_keeps_nothing_after_teardown(run_toml):
    """tdx.md §3.1/§3.2: with running-vcpu, no Dynamic PAMT and no cached page outlives the TDs;
    the per-vCPU cache holds 10 pages (5 pairs) per vCPU."""
    r = run_toml(scenario(vcpus=3), vendor="tdx:policy=running-vcpu", check=True)
    after = r["memory"]["after_teardown"]
    assert after["fw_metadata"] == 0 and after["vendor_pool"] == 0 and after["kvm_pool"] == 0
    assert after["fw_page_table"] == 0 and after["fw_control"] == 0 and after["leaked"] == 0
    assert r["vendor_report"]["pamt_pairs_now"] == 0
    assert r["pools"]["pamt_page_cache"]["peak_pages"] == 10 * 3
    assert r["errors"]["total"] == 0


def test_split_pairs_come_from_the_per_vm_cache(run_toml):
    """tdx.md §4.3: a conversion's split takes 4 pages (two pairs) from the per-VM cache."""
    r = run_toml(scenario(), vendor="tdx")
    assert r["splits"]["by_cause"]["convert"]["2M"] > 0
    assert r["pools"]["pamt_vm_cache"]["peak_pages"] == 8
    assert r["errors"]["total"] == 0


def test_vcpu_pool_allocates_in_atomic_context_on_split_paths(run_toml):
    """The RFC's phys_prepare() has no vCPU on conversion paths: its pairs are allocated under
    mmu_lock, each an atomic-context allocation error with its call site."""
    r = run_toml(scenario(), vendor="tdx:policy=vcpu-pool")
    err = r["errors"]
    assert err["by_kind"].get("atomic_alloc", 0) > 0
    assert "tdx_pamt_get:pair" in err["by_site"].get("atomic_alloc", {})


def test_kmem_cache_keeps_pamt_after_every_td_is_gone(run_toml):
    """Kirill's objection to a kmem_cache with a PAMT-installing constructor: cached S-EPT
    pages keep their pairs with zero TDs."""
    r = run_toml(scenario(), vendor="tdx:policy=kmem-cache")
    after = r["memory"]["after_teardown"]
    assert after["vendor_pool"] > 0 and after["fw_metadata"] > 0


def test_gmem_prepare_maps_private_memory_at_4k(run_toml):
    """A pair installed at prepare time forbids a 2M AUG (sizes must match, tdx.md §1.2)."""
    r = run_toml(scenario(), vendor="tdx:policy=gmem-prepare")
    assert r["mappings"]["installed"]["2M"] == 0
    assert r["counters"]["huge_denied_by_pair"] > 0


def test_static_and_dynamic_give_the_same_mappings(run_toml):
    """PAMT flavour changes metadata, not what the guest gets mapped."""
    a = run_toml(scenario(), vendor="tdx:pamt=static")
    b = run_toml(scenario(), vendor="tdx")
    assert a["mappings"]["installed"] == b["mappings"]["installed"]
    assert "TDH.PHYMEM.PAMT.ADD" not in a["firmware"]["by_call"]
    assert b["firmware"]["by_call"]["TDH.PHYMEM.PAMT.ADD"]["count"] > 0


def test_topup_holds_pamt_in_idle_caches_until_teardown(run_toml):
    """Sean's top-up proposal: every page in a vCPU's S-EPT cache (up to 40) holds PAMT while
    it waits; the pages and their pairs go when the vCPU does."""
    r = run_toml(scenario(vcpus=2), vendor="tdx:policy=topup", check=True)
    assert r["check"]["violation"] is None
    assert r["memory"]["end"]["vendor_pool"] >= 2 * 5
    assert 40 < r["pools"]["mmu_external_spt_cache"]["peak_pages"] <= 2 * 40
    after = r["memory"]["after_teardown"]
    assert after["fw_metadata"] == 0 and after["vendor_pool"] == 0


def test_lazy_adds_pairs_where_the_failure_happens(run_toml):
    """The pre-RFC design: MISSING_PAMT_PAGE_PAIR first, then a pair allocated in place (under
    mmu_lock: atomic context) and the call retried; pairs go on the module's removal hint."""
    r = run_toml(scenario(), vendor="tdx:policy=lazy")
    assert r["counters"]["lazy_pair_faults"] > 0
    assert any(k.endswith("TDX_MISSING_PAMT_PAGE_PAIR") for k in r["vendor_report"]["failed_calls"])
    assert r["errors"]["by_site"]["atomic_alloc"]["tdx_lazy_pamt:pair"] > 0
    assert r["memory"]["after_teardown"]["fw_metadata"] == 0
