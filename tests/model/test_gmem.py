"""``emu/model/gmem.py``: guest memory folios (4K, THP, hugetlb 2M / 1G) and their release."""
import pytest

from emu.model import consts as C
from emu.model import state as st

from .scenarios import GUEST_PAGES, REGIONS, phase, scenario, set_scalar, vm

FOLIOS = ("folios_4k", "folios_2m", "folios_1g", "huge_folio_fallbacks")

# one page of the last 2M region of the first GiB made shared: the VMM discards its backing,
# then the guest touches it again
CONVERT_LAST_PAGE = phase("convert", direction="to_shared", pattern="scattered", size="4KiB",
                          region=["1022MiB", "1GiB"])


def folios(r):
    return tuple(r["counters"][k] for k in FOLIOS)


@pytest.mark.parametrize("backing, memory, expected", [
    ("4k", "1GiB", (GUEST_PAGES, 0, 0, 0)),
    ("thp", "1GiB", (0, REGIONS, 0, 0)),
    ("hugetlb-2m", "1GiB", (0, REGIONS, 0, 0)),
    ("hugetlb-1g", "2GiB", (0, 0, 2, 0)),
])
def test_backing_decides_the_folio_size(run_toml, backing, memory, expected):
    """Folio order follows the VM's backing: 4K only, THP, hugetlb 2M, hugetlb 1G (gmem.py)."""
    r = run_toml(scenario(vm(backing, memory=memory), phase("touch")))
    assert folios(r) == expected


def test_huge_folio_chance_0_and_1(run_toml):
    """A THP allocation gets a 2M folio with ``huge_folio_chance``, else 4K ones."""
    assert folios(run_toml(scenario(phase("touch"), chance=1.0))) == (0, REGIONS, 0, 0)
    assert folios(run_toml(scenario(phase("touch"), chance=0.0))) == (GUEST_PAGES, 0, 0, REGIONS)


def test_huge_folio_chance_half(run_toml):
    """At 0.5 about half the regions get a 2M folio; the others fall back to 512 4K folios."""
    r = run_toml(scenario(phase("touch"), chance=0.5))
    four_k, two_m, one_g, fallbacks = folios(r)
    assert 150 < two_m < 362                # binomial(512, 0.5): mean 256, sd 11.3
    assert (two_m + fallbacks, four_k, one_g) == (REGIONS, fallbacks * 512, 0)
    assert r["mappings"]["installed"] == {"4K": four_k, "2M": two_m, "1G": 0}


def test_thp_gets_a_2m_folio_only_when_the_whole_range_is_unbacked(run_toml):
    """Once part of a 2M range is backed by 4K folios, a refault there gets a 4K folio."""
    r = run_toml(scenario(phase("touch"), CONVERT_LAST_PAGE))
    # the discard splits the region's folio; the page it freed is refaulted as a 4K folio
    assert r["counters"]["folio_splits"] == 1
    assert folios(r) == (1, REGIONS, 0, 0)
    assert r["memory"]["end"]["guest_shared"] == GUEST_PAGES


def test_a_range_wholly_freed_gets_a_new_2m_folio(run_toml):
    """A folio wholly inside a released range is freed whole; the range is then unbacked."""
    text = scenario(phase("touch"), phase(
        "convert", direction="to_shared", pattern="ranges", range_size="2MiB", align="2MiB",
        size="2MiB", region=["2MiB", "4MiB"]))
    r = run_toml(text)
    assert r["counters"]["folio_splits"] == 0
    assert folios(r) == (0, REGIONS + 1, 0, 0)
    assert r["mappings"]["end"] == {"4K": 0, "2M": REGIONS, "1G": 0}


def test_freeing_part_of_a_1g_folio_splits_it_down_to_4k(run_toml):
    """Freeing part of a huge folio splits it first (1G -> 2M -> 4K), the rest survives."""
    text = scenario(vm("hugetlb-1g", memory="2GiB"), phase("touch"), CONVERT_LAST_PAGE,
                    phase("touch"))
    r = run_toml(text, check=True)
    assert r["check"]["violation"] is None
    assert r["counters"]["folio_splits"] == 2
    assert folios(r) == (1, 0, 2, 0)
    # the second GiB keeps its 1G leaf; the first is mapped by what its folios now allow
    assert r["mappings"]["end"] == {"4K": 512, "2M": REGIONS - 1, "1G": 1}


@pytest.mark.parametrize("cap, backing, memory, expected", [
    (C.LVL_4K, "thp", "1GiB", (GUEST_PAGES, 0, 0, 0)),
    (C.LVL_2M, "hugetlb-1g", "2GiB", (0, 2 * REGIONS, 0, 0)),
    (C.LVL_1G, "hugetlb-1g", "2GiB", (0, 0, 2, 0)),
])
def test_gmem_max_level_caps_private_folios(run_toml, cap, backing, memory, expected):
    """The vendor knob ``gmem_max_level`` caps guest_memfd's folios (upstream: 4K only) for
    private memory, whatever the VM's backing; shared memory keeps the backing's folios."""
    def hook(session):
        session.S.sc[st.SC_PRIVATE_MEMORY] = 1
        session.S.sc[st.SC_GMEM_MAX_LEVEL] = cap

    r = run_toml(scenario(vm(backing, memory=memory), phase("touch")), session_hook=hook)
    assert folios(r) == expected


def test_gmem_max_level_leaves_shared_memory_alone(run_toml):
    """Memory that is not private (a plain VM's) keeps its backing's folios under the cap."""
    r = run_toml(scenario(phase("touch")), session_hook=set_scalar(st.SC_GMEM_MAX_LEVEL, C.LVL_4K))
    assert folios(r) == (0, REGIONS, 0, 0)
