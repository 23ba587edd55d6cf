"""``emu/model/host.py``: host frames, one owner each, and the allocator."""
from .scenarios import (FREE_PAGES, GUEST_PAGES, HOST_PAGES, RESERVED_PAGES, nonzero, phase,
                        scenario, vm)


def test_owners_add_up_to_host_memory_at_end_and_after_teardown(run_toml):
    """Every frame has exactly one owner, so the owner columns sum to host memory (host.py)."""
    r = run_toml(scenario(phase("touch")))
    mem = r["memory"]
    assert mem["host_pages"] == HOST_PAGES
    # 1 GiB of 2M folios, root + PDPT + PD, the vCPU's cache after taking those 3 of its 40
    assert nonzero(mem["end"]) == {
        "free": FREE_PAGES - GUEST_PAGES - 40, "host": RESERVED_PAGES,
        "guest_shared": GUEST_PAGES, "kvm_page_table": 3, "kvm_pool": 37}
    assert sum(mem["end"].values()) == HOST_PAGES
    assert nonzero(mem["after_teardown"]) == {"free": FREE_PAGES, "host": RESERVED_PAGES}


def test_peak_is_each_owners_own_peak(run_toml):
    """``memory.peak`` holds each owner's own peak, ``used_peak_pages`` the peak of non-free."""
    mem = run_toml(scenario(phase("touch")))["memory"]
    # the cache peaked at 40 before its first 3 pages became tables; free peaked at the start
    assert nonzero(mem["peak"]) == {
        "free": FREE_PAGES, "host": RESERVED_PAGES, "guest_shared": GUEST_PAGES,
        "kvm_page_table": 3, "kvm_pool": 40}
    assert mem["used_peak_pages"] == RESERVED_PAGES + GUEST_PAGES + 40


def test_reserved_memory_is_owned_by_host(run_toml):
    """``host.reserved`` (default 1% of memory, rounded up to 2 MiB) shows as owner ``host``."""
    r = run_toml(scenario(phase("touch"), reserved=None))
    reserved = 42 * 256             # 4 GiB / 100 = 40.96 MiB -> 42 MiB
    for col in ("peak", "end", "after_teardown"):
        assert r["memory"][col]["host"] == reserved
    assert r["memory"]["after_teardown"]["free"] == HOST_PAGES - reserved


def test_4k_allocations_keep_2m_regions_whole(run_toml):
    """4K frames are carved one region at a time, keeping 2M regions whole (host.py docstring)."""
    # a 4K-backed guest touches all its memory first, then a THP guest needs 512 whole
    # regions, and the host has no region to spare: any region the 4K allocations broke up
    # would make a THP allocation fall back to 4K
    text = scenario(vm("4k", name="a"), vm("thp", name="b"), phase("touch", vm="a"),
                    phase("touch", vm="b"), memory="2116MiB")
    r = run_toml(text, teardown=False)
    assert r["memory"]["end"]["free"] < 512
    assert (r["counters"]["folios_2m"], r["counters"]["huge_folio_fallbacks"]) == (512, 0)
    assert r["mappings"]["end"] == {"4K": GUEST_PAGES, "2M": 512, "1G": 0}
