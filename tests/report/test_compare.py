"""``emu compare``: one operation stream, several vendors, one table."""
import json

import pytest

from emu.errors import EmuError
from emu.records import ReportSection
from emu.report.compare import _merge_rows, compare

SMALL = """
[host]
memory = "2GiB"
seed = 5
[[vm]]
name = "g"
memory = "256MiB"
backing = "thp"
[[phase]]
kind = "touch"
accept_level = "2M"
[[phase]]
kind = "folio_split"
count = 4
"""


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(SMALL)
    return p


def test_every_vendor_runs_the_same_operations_and_differs_where_it_should(small, plugins):
    t = compare(small, ["plain", "plain:max_level=4K"], plugins=plugins)
    assert t.vendors == ["plain", "plain:max_level=4K"]
    ops = t.row("operations")
    assert ops[0] == ops[1] > 0
    huge = t.row("huge mappings at end (2M)")
    assert huge[0] > 0 and huge[1] == 0
    # plain zaps a mapping whose folio the host splits: only the 2M run flushes for it
    flushes = t.row("TLB flushes")
    assert flushes[0] > flushes[1]
    text = t.render()
    assert "max_level=4K" in text and "Splits, merges and mappings" in text


def test_json_has_the_table_and_optionally_every_result(small, plugins):
    t = compare(small, ["plain"], plugins=plugins)
    data = json.loads(t.to_json())
    assert data["vendors"] == ["plain"] and data["seed"] == 5
    assert [s["name"] for s in data["sections"]][:2] == ["workload", "splits"]
    assert "results" not in data
    full = json.loads(t.to_json(full=True))
    assert full["results"]["plain"]["operations"]["guest"] == t.row("guest operations")[0]


def test_rows_zero_for_every_vendor_are_left_out_unless_asked(small, plugins):
    lean = compare(small, ["plain"], plugins=plugins)
    every = compare(small, ["plain"], plugins=plugins, all_rows=True)
    with pytest.raises(KeyError):
        lean.row("leaked (peak)")
    assert every.row("leaked (peak)") == [0]
    assert lean.row("left after teardown") == [0]     # a key row, shown at 0


def test_a_broken_plugin_section_is_named_and_the_rest_of_the_table_stays(small, plugins):
    def broken(data):
        raise RuntimeError("no such counter")

    plugins.report_sections["broken"] = ReportSection("broken", "Broken", broken)
    try:
        t = compare(small, ["plain"], plugins=plugins)
    finally:
        del plugins.report_sections["broken"]
    assert any("'broken'" in p and "no such counter" in p for p in t.problems)
    assert t.row("operations")[0] > 0


@pytest.mark.parametrize("vendors,costs,message", [
    ([], (), r"give --vendor \(repeatable\), or list the vendors in the scenario's \[compare\]"),
    (["plain", "plain"], (), "given twice"),
    (["nosuch"], (), "unknown vendor 'nosuch'"),
    (["plain"], ("seamcall:TDH.MEM.PAGE.AUG=5",), "no compared vendor has a cost"),
])
def test_bad_input_is_one_clear_error(small, plugins, vendors, costs, message):
    with pytest.raises(EmuError, match=message):
        compare(small, vendors, plugins=plugins, costs=costs)


def test_a_label_only_some_vendors_have_stays_next_to_its_neighbours():
    rows = _merge_rows([[("splits", 1, "count"), ("huge", 2, "count")],
                        [("splits", 3, "count"), ("  by punch", 3, "count"),
                         ("huge", 0, "count")]])
    assert [r["label"] for r in rows] == ["splits", "  by punch", "huge"]
    assert rows[1]["values"] == [None, 3]


def test_the_scenario_can_name_its_columns(tmp_path, plugins):
    path = tmp_path / "s.toml"
    path.write_text(SMALL + '\n[compare]\nvendors = ["plain"]\n')
    t = compare(path, [], plugins=plugins)
    assert [r.data["vendor"]["name"] for r in t.results] == ["plain"]
