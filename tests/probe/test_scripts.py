"""The ready-made scripts in ``probes/`` run on their bundled examples and print what their
``*_example.txt`` shows (``EMU_UPDATE_EXAMPLES=1`` rewrites those files from a real run)."""
import io
import os
import re
from pathlib import Path

import pytest

import emu
from emu.probe.compile import Script

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "probes"


def example_of(script: Path) -> tuple[str, str]:
    """The ``// Example: SCENARIO VENDOR`` line of a script's header."""
    m = re.search(r"^// Example: (\S+) (\S+)", script.read_text(), re.M)
    assert m, f"{script.name} has no '// Example: SCENARIO VENDOR' line"
    return m.group(1), m.group(2)


EXAMPLES = {p.stem: example_of(p) for p in sorted(PROBES.glob("*.bt"))}


def test_every_script_has_an_example_and_an_overhead_note():
    assert len(EXAMPLES) >= 8
    for name in EXAMPLES:
        text = (PROBES / f"{name}.bt").read_text()
        assert "// Overhead: " in text, name
        assert (PROBES / f"{name}_example.txt").is_file(), name


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
