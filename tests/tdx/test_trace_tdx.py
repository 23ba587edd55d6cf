"""A TDX run's trace: SEAMCALLs as slices named by leaf, nested in the operation that made them,
a comparison's vendors side by side (one process each); its report page."""
import json
from pathlib import Path

from emu.report.compare import compare
from emu.report.html import write_report
from emu.report.trace import write_chrome_trace
from tests.report.trace_rules import problems

ROOT = Path(__file__).resolve().parents[2]


def test_seamcalls_are_slices_inside_their_operations(plugins, tmp_path):
    t = compare(ROOT / "examples/tdx-boot.toml", ["tdx", "snp"], plugins=plugins,
                trace_events=30_000, sample_memory=True)
    page = write_report(tmp_path / "report", t, t.description)
    assert "highest tdx" in page.read_text() or "highest snp" in page.read_text()
    path = tmp_path / "t.json"
    write_chrome_trace(path, [r.trace for r in t.results], "tdx-boot")
    doc = json.loads(path.read_text())
    assert problems(doc) == []
    events = doc["traceEvents"]
    names = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {"emu tdx", "emu snp"}
    tdx_fw = [e for e in events if e["pid"] == 1 and e.get("cat") == "firmware"]
    snp_fw = [e for e in events if e["pid"] == 2 and e.get("cat") == "firmware"]
    assert {"TDH.MNG.CREATE", "TDH.MEM.PAGE.ADD", "TDH.MR.EXTEND"} <= {e["name"] for e in tdx_fw}
    assert any(e["name"] == "snp:rmpupdate" for e in snp_fw)
    ops = [e for e in events if e["pid"] == 1 and e.get("cat") == "operation"]
    add = next(e for e in tdx_fw if e["name"] == "TDH.MEM.PAGE.ADD")
    assert any(o["tid"] == add["tid"] and o["ts"] <= add["ts"] and
               add["ts"] + add["dur"] <= o["ts"] + o["dur"] + 1e-6 for o in ops)
