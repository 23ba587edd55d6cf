"""The command line: summary, JSON, bad input as one clear line with exit status 2."""
import json
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from emu.cli import app

ROOT = Path(__file__).resolve().parent.parent
SMALL = """
[host]
memory = "2GiB"
[[vm]]
name = "g"
memory = "256MiB"
[[phase]]
kind = "touch"
"""
runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging():
    """``emu run`` points structlog at the stderr of the moment, which under CliRunner is a
    capture that is closed after the call: later log lines in this process would fail."""
    yield
    structlog.reset_defaults()


def scenario(tmp_path, text=SMALL):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return str(p)


def test_run_prints_a_summary(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path)])
    assert r.exit_code == 0, r.output
    for word in ("operations", "mappings", "memory by owner", "mmu_lock", "virtual time"):
        assert word in r.output


def test_run_json_has_documented_keys(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    doc = (ROOT / "docs" / "result-json.md").read_text()
    for key in data:
        assert f"`{key}`" in doc, f"top-level key {key} is not documented"


def test_unknown_vendor_is_one_clear_error(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--vendor", "plian"])
    assert r.exit_code == 2
    assert "unknown vendor 'plian'" in r.output and "plain" in r.output
    assert "Traceback" not in r.output


def test_unknown_option_lists_the_options(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--vendor", "plain:levels=2M"])
    assert r.exit_code == 2
    assert "no option 'levels'" in r.output and "max_level" in r.output


def test_bad_option_value(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--vendor", "plain:max_level=3G"])
    assert r.exit_code == 2
    assert "allowed: 4K, 2M, 1G" in r.output


def test_bad_cost(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--cost", "exits=5"])
    assert r.exit_code == 2
    assert "unknown cost 'exits'" in r.output and "did you mean 'exit'" in r.output


def test_scenario_error_names_the_field(tmp_path):
    bad = SMALL.replace('memory = "256MiB"', 'memory = "256MiB"\nbackng = "thp"')
    r = runner.invoke(app, ["run", scenario(tmp_path, bad)])
    assert r.exit_code == 2
    assert "backng" in r.output and "backing" in r.output
    assert "Traceback" not in r.output


def test_vm_larger_than_host(tmp_path):
    bad = SMALL.replace('"256MiB"', '"64GiB"')
    r = runner.invoke(app, ["run", scenario(tmp_path, bad)])
    assert r.exit_code == 2
    assert "GiB" in r.output


def test_missing_scenario_file(tmp_path):
    r = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert r.exit_code == 2
    assert "no such file" in r.output


def test_emit_source_prints_the_driver(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--emit-source"])
    assert r.exit_code == 0, r.output
    assert "def run_batch(S, V, ops, first):" in r.output
    assert "#@emu:op" in r.output


def test_plugins_lists_plain_from_its_entry_point():
    r = runner.invoke(app, ["plugins"])
    assert r.exit_code == 0, r.output
    line = next(line for line in r.output.splitlines() if line.startswith("plain"))
    assert "entry point" in line and "vendor plain" in line


def test_compare_prints_one_column_per_vendor(tmp_path):
    r = runner.invoke(app, ["compare", scenario(tmp_path), "--vendor", "plain",
                            "--vendor", "plain:max_level=4K"])
    assert r.exit_code == 0, r.output
    head = r.output.splitlines()
    assert head[0].startswith("emu compare") and "max_level=4K" in r.output
    assert "guest operations" in r.output


def test_compare_json_and_bad_vendor(tmp_path):
    r = runner.invoke(app, ["compare", scenario(tmp_path), "--vendor", "plain", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["vendors"] == ["plain"]
    r = runner.invoke(app, ["compare", scenario(tmp_path), "--vendor", "plain",
                            "--vendor", "pln"])
    assert r.exit_code == 2 and "unknown vendor 'pln'" in r.output
    assert "Traceback" not in r.output
