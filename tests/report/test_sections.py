"""Report sections (``emu.report.sections``): row shapes, units, and the core's rows."""
import pytest

from emu.report import sections

SMALL = """
[host]
memory = "2GiB"
[[vm]]
name = "g"
memory = "256MiB"
backing = "thp"
[[phase]]
kind = "touch"
accept_level = "2M"
"""


def test_rows_are_normalized_with_a_unit():
    rows = sections.normalize([("a", 1), ("b", "x"), ("c", 3, "pages")])
    assert rows == [("a", 1, "count"), ("b", "x", "text"), ("c", 3, "pages")]


@pytest.mark.parametrize("bad", [("a",), ["a", 1], (1, 2), ("a", 1, "bytes")])
def test_a_malformed_row_is_refused_with_what_is_allowed(bad):
    with pytest.raises(ValueError, match="row"):
        sections.normalize([bad])


def test_values_print_in_their_unit():
    assert sections.format_value(2048, "pages") == "8 MiB"
    assert sections.format_value(1_500_000, "ns") == "1.5 ms"
    assert sections.format_value(12345, "count") == "12,345"
    assert sections.format_value(None, "count") == "-"


def test_core_sections_read_a_real_result(run_toml):
    data = run_toml(SMALL).data
    rows = {label.strip(): value for sec in sections.core_sections()
            for label, value, _ in sections.normalize(sec.render(data))}
    assert rows["guest operations"] == data["operations"]["guest"] > 0
    assert rows["huge mappings at end (2M)"] == data["mappings"]["end"]["2M"] > 0
    assert rows["kvm_page_table (peak)"] == data["memory"]["peak"]["kvm_page_table"] > 0
    assert rows["left after teardown"] == 0


def test_core_sections_are_registered_through_the_hook(plugins):
    assert list(plugins.report_sections)[:len(sections.CORE_SECTION_NAMES)] == \
        list(sections.CORE_SECTION_NAMES)


def test_emu_run_prints_the_sections_plugins_add(run_toml):
    from emu.records import ReportSection

    data = run_toml(SMALL).data
    ok = ReportSection("rates", "Rates", lambda d: [("faults", d["counters"]["faults"])])
    other = ReportSection("other", "Other vendor", lambda d: [])
    broken = ReportSection("broken", "Broken", lambda d: 1 / 0)
    text = sections.render_plugin_sections(
        data, {"workload": sections.core_sections()[0], "rates": ok, "other": other,
               "broken": broken})
    assert text.splitlines()[0] == "Rates"
    assert f"faults  {data['counters']['faults']:,}" in text
    assert "Other vendor" not in text and "Workload" not in text
    assert "report section 'broken' failed: ZeroDivisionError" in text
