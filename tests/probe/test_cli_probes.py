"""``emu run -e/--probe-file`` and ``emu probes``: output, errors with carets, listing."""
import json

import pytest
import structlog
from typer.testing import CliRunner

from emu.cli import app
from tests.test_cli import scenario

runner = CliRunner()
#: SMALL's 256 MiB guest, touched on THP backing, maps 128 2M leaves
LEAVES = 128


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    structlog.reset_defaults()


def test_a_one_liner_prints_bpftraces_exit_maps(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "-q",
                            "-e", "kvm:map { @[args.level] = count(); }"])
    assert r.exit_code == 0, r.output
    assert r.output == f"\n\n@[2M]: {LEAVES}\n"


def test_probe_files_and_json(tmp_path):
    f = tmp_path / "maps.bt"
    f.write_text('BEGIN { printf("go\\n"); }\nkvm:map { @n = count(); }\n')
    r = runner.invoke(app, ["run", scenario(tmp_path), "-q", "--probe-file", str(f),
                            "-f", "json"])
    assert r.exit_code == 0, r.output
    docs = [json.loads(line) for line in r.output.splitlines() if line.strip()]
    assert docs == [{"type": "printf", "data": "go\n"},
                    {"type": "map", "data": {"@n": LEAVES}}]


def test_the_summary_follows_the_probe_output(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "-e", "kvm:map { @n = count(); }"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"\n\n@n: {LEAVES}\n")
    assert "operations" in r.output


def test_a_script_error_is_a_compiler_message_and_nothing_runs(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "-e",
                            "kvm:split { @[args.cuase] = count(); }"])
    assert r.exit_code == 2
    lines = r.output.splitlines()
    assert lines[0].startswith("emu: error: <-e>:1:20: error: kvm:split has no field 'cuase'; "
                               "did you mean 'cause'?")
    assert lines[1] == "kvm:split { @[args.cuase] = count(); }"
    assert lines[2] == " " * 19 + "^~~~~"
    assert "operations" not in r.output


def test_a_syntax_error_in_a_file_names_the_file(tmp_path):
    f = tmp_path / "bad.bt"
    f.write_text("kvm:map {\n  @x = count(;\n}\n")
    r = runner.invoke(app, ["run", scenario(tmp_path), "--probe-file", str(f)])
    assert r.exit_code == 2
    assert r.output.startswith(f"emu: error: {f}:2:14: error: unexpected ';'")


def test_a_missing_probe_file(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--probe-file", "nope.bt"])
    assert r.exit_code == 2
    assert "probe file 'nope.bt'" in r.output


def test_emit_probe_source(tmp_path):
    r = runner.invoke(app, ["run", scenario(tmp_path), "--emit-probe-source",
                            "-e", "kvm:map { @n = count(); }"])
    assert r.exit_code == 0, r.output
    assert "def program(ring_addr, n, data_addr):" in r.output


def test_probes_lists_points_like_bpftrace_l():
    r = runner.invoke(app, ["probes", "-l", "kvm:*"])
    assert r.exit_code == 0, r.output
    names = r.output.split()
    assert "kvm:split" in names and "kvm:fault" in names
    assert all(n.startswith("kvm:") for n in names)
    r = runner.invoke(app, ["probes", "-lv", "tdx:seamcall"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "tdx:seamcall"
    assert "    tdx_call call  // the SEAMCALL leaf (emu_tdx.abi.CALL_NAMES)" in r.output


def test_probes_with_no_match_is_an_error():
    r = runner.invoke(app, ["probes", "nothing:*"])
    assert r.exit_code == 2
    assert "no probe point matches 'nothing:*'" in r.output
