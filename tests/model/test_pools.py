"""``emu/model/pools.py``: the ``kvm_mmu_memory_cache`` model (top-up, consume, drain)."""
from emu.model import consts as C

from .scenarios import phase, scenario, vm

CAP, MIN = C.CORE_POOL_CAPACITY[C.POOL_SHADOW_PAGE], C.CORE_POOL_MIN[C.POOL_SHADOW_PAGE]
# a 1 GiB guest on 4K pages needs its root, one PDPT, one PD and 512 PTs
TABLES_4K = 3 + 512


def test_core_cache_sizes_are_kvms():
    """Capacity 40 (KVM_ARCH_NR_OBJS_PER_MEMORY_CACHE), minimum 5 (PT64_ROOT_MAX_LEVEL)."""
    assert (CAP, MIN) == (40, 5)


def test_topup_fills_to_capacity_only_below_minimum(run_toml):
    """__kvm_mmu_topup_memory_cache: a cache holding fewer than 5 pages is filled to 40."""
    r = run_toml(scenario(vm("4k"), phase("touch")), teardown=False)
    pool = r["pools"]["mmu_shadow_page_cache"]
    # the first fault fills 0 -> 40 and takes 4 tables (36 left); every later region takes one
    # PT, and the cache is refilled (+36) each time it is down to 4: 511 = 32 + 13 * 36 + 11,
    # so 1 + 14 top-ups, and 40 - 11 = 29 pages left at the end
    assert pool == {"scope": "vcpu", "capacity": 40, "topups": 15, "taken": TABLES_4K,
                    "taken_while_empty": 0, "peak_pages": 40, "held_pages": 29}


def test_cached_pages_are_host_frames_owned_by_kvm_pool(run_toml):
    """Cached pages are host frames owned by ``kvm_pool`` (pools.py), one cache per vCPU."""
    text = scenario(vm("4k", vcpus=2), phase("touch", accept_on_touch=False))
    r = run_toml(text, teardown=False)
    pool = r["pools"]["mmu_shadow_page_cache"]
    # vCPU 0 touches the first page of every region and takes every table (29 left, as above);
    # vCPU 1 faults too, so its cache is filled once and never used
    assert (pool["topups"], pool["held_pages"], pool["peak_pages"]) == (16, 69, 80)
    mem = r["memory"]
    assert mem["end"]["kvm_pool"] == 69 and mem["peak"]["kvm_pool"] == 80
    assert mem["end"]["kvm_page_table"] == TABLES_4K
    assert sum(mem["end"].values()) == mem["host_pages"]


def test_pools_are_drained_at_teardown(run_toml):
    """kvm_mmu_free_memory_cache at vCPU/VM destruction: nothing stays in ``kvm_pool``."""
    r = run_toml(scenario(vm("4k", vcpus=2), phase("touch", accept_on_touch=False)))
    assert r["memory"]["end"]["kvm_pool"] == 69
    assert r["memory"]["after_teardown"]["kvm_pool"] == 0
    assert all(p["held_pages"] == 0 for p in r["pools"].values())


def test_split_cache_is_per_vm_with_minimum_4(run_toml):
    """kvm->arch.split_page_cache: topped up (min 4) before a conversion takes mmu_lock."""
    text = scenario(phase("touch"),
                    phase("convert", direction="to_shared", pattern="scattered", size="8KiB"))
    r = run_toml(text, teardown=False)
    # two conversions: the first fills the VM's cache, the second finds 40 >= 4; plain zaps
    # crossing huge leaves instead of splitting them, so nothing is taken
    assert r["pools"]["split_page_cache"] == {
        "scope": "vm", "capacity": 40, "topups": 1, "taken": 0, "taken_while_empty": 0,
        "peak_pages": 40, "held_pages": 40}


def oom_scenario(spare: int) -> str:
    """A 128 MiB THP guest that fills its host exactly, but for ``spare`` 4K frames: every one of
    its 64 regions is a 2M folio, the first fault's top-up takes the last 40 free frames (+spare).
    Then every folio is split (zapping the 2M leaves) and the guest touches its memory again, so
    each region needs a PT from the vCPU's cache, which cannot be refilled."""
    reserved_kib = (512 - 40 - spare) * 4
    return scenario(vm("thp", memory="128MiB"), phase("touch"), phase("folio_split", count=64),
                    phase("touch"), memory="130MiB", reserved=f"{reserved_kib}KiB")


def test_fault_fails_when_topup_cannot_reach_minimum(run_toml):
    """KVM's fault returns -ENOMEM when the top-up fails: no consume from an empty cache."""
    r = run_toml(oom_scenario(spare=0), check=True)
    assert r["check"]["violation"] is None
    # 37 PTs are cached after the first touch: regions 0-32 take one each, down to 4 < 5; from
    # then on every fault's top-up fails, so region 32 keeps only its first page and the rest
    # of the 64 regions stay unmapped
    mapped = 32 * 512 + 1
    failed = (64 * 512) - mapped
    assert r["mappings"]["end"]["4K"] == mapped
    assert r["pools"]["mmu_shadow_page_cache"]["taken_while_empty"] == 0
    # one failed top-up per failed fault, plus the split cache's for each of the 64 host splits
    assert r["errors"]["by_kind"] == {"host_oom": failed + 64}
    assert r["errors"]["by_site"] == {"host_oom": {"kvm_mmu_topup_memory_cache": failed + 64}}


def test_partial_topup_that_reaches_minimum_succeeds(run_toml):
    """__kvm_mmu_topup_memory_cache returns 0 when it ran out with at least ``min`` pages."""
    # 43 spare frames: the split cache takes 40 at the first host split, 3 are left for the vCPU
    r = run_toml(oom_scenario(spare=43))
    # 4 cached + 3 = 7 >= 5: the fault goes on; three more regions get their PT (7 -> 4), then
    # the next top-up fails with nothing added
    assert r["mappings"]["end"]["4K"] == (32 + 3) * 512 + 1
    assert r["pools"]["mmu_shadow_page_cache"]["topups"] == 2
    assert r["pools"]["mmu_shadow_page_cache"]["taken_while_empty"] == 0
    assert set(r["errors"]["by_kind"]) == {"host_oom"}


def never_topped_up(session):
    """Give the vCPU page-table cache a minimum of 0, so it is never filled."""
    session.S.pool_min[C.POOL_SHADOW_PAGE] = 0


def test_consume_from_empty_cache_allocates_directly(run_toml):
    """A consume from an empty cache is ``pool_empty``, then a direct allocation (pools.take)."""
    # no plain scenario gets here (a fault needs at most 4 tables, the minimum is 5, and plain
    # never splits), hence the hook
    r = run_toml(scenario(phase("touch")), session_hook=never_topped_up, teardown=False)
    pool = r["pools"]["mmu_shadow_page_cache"]
    # root, PDPT and PD of a 1 GiB guest mapped at 2M
    assert (pool["topups"], pool["taken"], pool["taken_while_empty"]) == (0, 3, 3)
    assert r["errors"]["by_kind"]["pool_empty"] == 3
    assert r["memory"]["end"]["kvm_page_table"] == 3 and r["memory"]["peak"]["kvm_pool"] == 0
