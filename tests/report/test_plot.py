"""--plot and --report: the PNG is drawn from the run's samples and the HTML page stands alone."""
import json
import re

import structlog
from typer.testing import CliRunner

from emu.cli import app
from emu.report.compare import compare
from emu.report.html import summary_lines, write_report
from emu.report.plot import plot_runs
from tests.model.scenarios import phase, scenario, vm

WORKLOAD = scenario(vm("thp", vcpus=2), phase("touch"), phase("punch", size="64MiB"))
PNG = b"\x89PNG\r\n\x1a\n"


def test_memory_is_sampled_over_the_run(run_toml):
    r = run_toml(WORKLOAD, sample_memory=True)
    t, pages = r.memory_samples.series()
    assert len(t) >= 3 and list(t) == sorted(t)
    assert t[-1] == r["time"]["virtual_ns"]
    assert pages.sum(axis=1).min() == pages.sum(axis=1).max()     # owners add up, always
    kvm_pt = pages[:, 5]
    assert kvm_pt.max() > 0 and kvm_pt[-1] == 0                    # page tables come and go


def test_the_plot_has_a_panel_per_run_and_the_causes(run_toml, tmp_path):
    r = run_toml(WORKLOAD, sample_memory=True)
    out = tmp_path / "p.png"
    drawn = plot_runs(out, [("plain", r), ("plain again", r)], title="test")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 20_000
    assert drawn["panels"] == 2
    assert "kvm_page_table" in drawn["owners"] and "guest_private" not in drawn["owners"]


def test_the_report_is_one_offline_page(tmp_path, plugins):
    path = tmp_path / "s.toml"
    path.write_text("# What a punch costs.\n" + WORKLOAD)
    table = compare(path, ["plain"], plugins=plugins, sample_memory=True)
    page = write_report(tmp_path / "rep", table, table.description)
    text = page.read_text()
    assert "What a punch costs." in text
    assert "<img src='plot.png'" in text and (tmp_path / "rep" / "plot.png").is_file()
    assert not re.search(r"(src|href)=['\"]https?:", text)             # nothing fetched
    assert json.loads((tmp_path / "rep" / "table.json").read_text())["vendors"] == ["plain"]
    for line in summary_lines(table):
        assert line in text


def test_the_cli_writes_plot_and_report(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(WORKLOAD)
    r = CliRunner().invoke(app, ["compare", str(path), "-v", "plain", "--plot",
                                 str(tmp_path / "c.png"), "--report", str(tmp_path / "rep")])
    structlog.reset_defaults()
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)
    assert (tmp_path / "rep" / "index.html").is_file()
    assert "emu: report:" in r.output
