"""``--trace``: a Chrome trace-event file that follows Perfetto's JSON importer rules."""
import io
import json

import structlog
from typer.testing import CliRunner

from emu.cli import app
from emu.report.trace import write_chrome_trace
from tests.model.scenarios import phase, scenario, vm
from tests.report.trace_rules import problems

WORKLOAD = scenario(vm("thp", vcpus=2), phase("touch"), phase(
    "convert", direction="to_shared", pattern="scattered", size="8MiB"),
    phase("punch", size="64MiB"))


def trace_of(run_toml, tmp_path, **kw):
    r = run_toml(WORKLOAD, trace_events=kw.pop("events", 100_000), **kw)
    path = tmp_path / "t.json"
    write_chrome_trace(path, [r.trace], "w.toml")
    return r, json.loads(path.read_text()), path


def test_the_trace_follows_perfettos_rules(run_toml, tmp_path):
    r, doc, _ = trace_of(run_toml, tmp_path)
    assert problems(doc) == []
    events = doc["traceEvents"]
    threads = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"g/vcpu0", "g/vcpu1", "g/vmm", "g/mmu_notifier", "khugepaged"} <= threads
    ops = [e for e in events if e["ph"] == "X" and e["cat"] == "operation"]
    assert {"access", "convert", "punch"} <= {e["name"] for e in ops}
    assert all(e["dur"] > 0 for e in ops)
    instants = [e for e in events if e["ph"] == "i"]
    assert len(instants) == r["splits"]["total"] + r["merges"]["total"] + r["errors"]["total"]
    counters = [e for e in events if e["ph"] == "C" and e["name"] == "memory by owner (MiB)"]
    assert len(counters) >= 2
    assert counters[-1]["args"]["guest_private"] == 0          # after teardown
    assert max(c["args"]["kvm_page_table"] for c in counters) > 0
    assert doc["otherData"]["runs"][0]["events_dropped"] == 0


def test_the_cap_keeps_the_first_events_and_says_how_many_more(run_toml, tmp_path):
    r, doc, _ = trace_of(run_toml, tmp_path, events=50)
    assert r.trace.kept == 50 and r.trace.dropped > 0
    assert doc["otherData"]["runs"][0] == {"label": "plain", "events_kept": 50,
                                           "events_dropped": r.trace.dropped}
    assert problems(doc) == []


def test_a_trace_does_not_change_what_probes_see(run_toml, tmp_path):
    script = "kvm:map { @m = count(); } kvm:zap /1/ { @z = count(); }"
    plain = run_toml(WORKLOAD, probes=[script], probe_stream=io.StringIO())
    traced = run_toml(WORKLOAD, probes=[script], probe_stream=io.StringIO(), trace_events=1000)
    maps = [{m.name: m.entries for m in r.probes.maps()} for r in (plain, traced)]
    assert maps[0] == maps[1]


def test_the_same_run_writes_the_same_bytes(run_toml, tmp_path):
    first = trace_of(run_toml, tmp_path)[2].read_bytes()
    assert trace_of(run_toml, tmp_path)[2].read_bytes() == first


def test_the_cli_writes_the_trace_and_says_what_it_kept(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(WORKLOAD)
    out = tmp_path / "trace.json"
    r = CliRunner().invoke(app, ["run", str(path), "-q", "--trace", str(out),
                                 "--trace-events", "100"])
    structlog.reset_defaults()
    assert r.exit_code == 0, r.output
    assert "emu: trace: plain: 100 events in" in r.output
    assert "more dropped at the cap (--trace-events raises it)" in r.output
    assert problems(json.loads(out.read_text())) == []


def test_trace_from_skips_what_came_before(run_toml, tmp_path):
    whole = run_toml(WORKLOAD, trace_events=100_000)
    start = whole["time"]["virtual_ns"] // 2
    r = run_toml(WORKLOAD, trace_events=100_000, trace_from_ns=start)
    path = tmp_path / "late.json"
    write_chrome_trace(path, [r.trace], "w.toml")
    doc = json.loads(path.read_text())
    assert problems(doc) == []
    timed = [e for e in doc["traceEvents"] if e["ph"] in ("X", "i", "C")]
    assert timed and min(e["ts"] for e in timed if e["ph"] != "X") >= start / 1000
    assert 0 < r.trace.kept < whole.trace.kept


def test_a_bad_trace_start_is_one_clear_error(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(WORKLOAD)
    r = CliRunner().invoke(app, ["run", str(path), "--trace", str(tmp_path / "t.json"),
                                 "--trace-from", "soon"])
    structlog.reset_defaults()
    assert r.exit_code == 2
    assert r.output.startswith("emu: error: --trace-from 'soon':")
