"""Every TDX example runs, under the vendor its header names first, with ``--check`` passing
(the vendor check included: refcounts against the module's page counts, PAMT types against
frame owners) and owners adding up after teardown."""
import re
from pathlib import Path

import pytest

import emu

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("tdx-*.toml")
                  if "emu run" in p.read_text())
COMPARISONS = sorted(p for p in (ROOT / "examples").glob("tdx-*.toml")
                     if "emu compare" in p.read_text())


def documented_vendor(path: Path) -> str:
    m = re.search(r"emu run examples/\S+ --vendor (\S+)", path.read_text())
    assert m, f"{path.name} names no --vendor command"
    return m.group(1)


def documented_vendors(path: Path) -> list[str]:
    """The vendors of the example's ``[compare]`` table (what ``emu compare`` runs)."""
    import tomllib

    return tomllib.loads(path.read_text())["compare"]["vendors"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_tdx_example_passes_check(path, plugins):
    r = emu.run(path, documented_vendor(path), plugins=plugins, check=True)
    assert r["check"]["violation"] is None
    mem = r["memory"]
    assert sum(mem["after_teardown"].values()) == mem["host_pages"]
    assert mem["after_teardown"]["guest_private"] == 0
    assert mem["after_teardown"]["fw_control"] == 0
    # the only failures allowed are the ones a design works through: lazy's missing pairs, and
    # a guest's 2M accept over 4K mappings, which it retries at 4K
    expected = ("TDX_MISSING_PAMT_PAGE_PAIR", "TDG.MEM.PAGE.ACCEPT TDX_PAGE_SIZE_MISMATCH")
    for failure in r["vendor_report"]["failed_calls"]:
        assert failure.endswith(expected[0]) or failure == expected[1], failure


def test_the_policy_comparison_shows_what_each_policy_keeps(plugins):
    """examples/tdx-policies.toml: every policy on one workload, as its header runs it."""
    from emu.report.compare import compare

    path, = COMPARISONS
    vendors = documented_vendors(path)
    assert len(vendors) == 8 and vendors[-1].startswith("snp")
    t = compare(path, vendors, plugins=plugins, check=True)
    assert not t.problems, t.problems
    col = dict(zip(vendors, range(len(vendors))))

    def row(label, vendor):
        return t.row(label)[col[vendor]]

    static, rv = "tdx:pamt=static", "tdx:policy=running-vcpu"
    assert row("operations", static) == row("operations", rv)
    # one pair per 2M region used at 4K, none with static PAMT; nothing left after teardown
    assert row("fw_metadata (peak)", static) in (0, None)
    assert row("page pairs at peak", rv) > 0
    assert row("fw_metadata (after teardown)", rv) in (0, None)
    # kmem-cache keeps S-EPT pages and their pairs once both TDs are gone
    assert row("vendor_pool (after teardown)", "tdx:policy=kmem-cache") > 0
    assert row("fw_metadata (after teardown)", "tdx:policy=kmem-cache") > 0
    # vcpu-pool allocates in atomic context on the vCPU-less split paths; lazy everywhere
    assert row("atomic_alloc at tdx_pamt_get:pair", "tdx:policy=vcpu-pool") > 0
    assert row("atomic_alloc at tdx_lazy_pamt:pair", "tdx:policy=lazy") > 0
    assert row("atomic_alloc", rv) in (0, None)
    # docs/compare.md shows this very table
    doc = (ROOT / "docs" / "compare.md").read_text()
    shown = doc.split("```\nemu compare  scenario examples/tdx-policies.toml", 1)[1]
    shown = shown.split("```", 1)[0]
    assert t.render().split("\n", 1)[1] == shown.split("\n", 1)[1], \
        "docs/compare.md no longer matches emu compare's output"
