"""The ready-made scripts in ``probes/`` run on their bundled examples and print what their
``*_example.txt`` shows (``EMU_UPDATE_EXAMPLES=1`` rewrites those files from a real run)."""
import io
import os
from pathlib import Path

import pytest

import emu
from emu.probe.compile import Script

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "probes"

#: script -> (scenario, vendor) its example output comes from
EXAMPLES = {
    "pamt-pairs": ("examples/tdx-policy-lazy.toml", "tdx:policy=lazy"),
    "seamcall-latency": ("examples/tdx-boot.toml", "tdx"),
    "fw-failures": ("examples/tdx-policy-lazy.toml", "tdx:policy=lazy"),
    "splits": ("examples/snp-16g-io.toml", "snp:gmem=thp"),
    "atomic-alloc": ("examples/tdx-policy-lazy.toml", "tdx:policy=lazy"),
    "pool-occupancy": ("examples/tdx-policy-running-vcpu.toml", "tdx:policy=running-vcpu"),
    "rmp-faults": ("examples/snp-lazy-4k.toml", "snp:gmem=thp"),
    "lock-wait": ("examples/conversion-storm.toml", "tdx"),
}


def test_every_script_has_an_example():
    scripts = sorted(p.stem for p in PROBES.glob("*.bt"))
    assert scripts == sorted(EXAMPLES)
    assert len(scripts) >= 8


def command(name: str) -> str:
    scenario, vendor = EXAMPLES[name]
    return f"$ emu run {scenario} -v {vendor} -q --probe-file probes/{name}.bt\n"


@pytest.mark.parametrize("name", [
    # run each on the worker that compiles its vendor's driver (see tests/conftest.py)
    pytest.param(n, marks=pytest.mark.xdist_group(EXAMPLES[n][1].split(":")[0]))
    for n in sorted(EXAMPLES)])
def test_script_output_matches_its_example(name, plugins):
    scenario, vendor = EXAMPLES[name]
    script = PROBES / f"{name}.bt"
    out = io.StringIO()
    emu.run(ROOT / scenario, vendor, plugins=plugins,
            probes=[Script(script.read_text(), str(script))], probe_stream=out)
    text = command(name) + out.getvalue()
    example = PROBES / f"{name}_example.txt"
    if os.environ.get("EMU_UPDATE_EXAMPLES"):
        example.write_text(text)
    assert example.read_text() == text
