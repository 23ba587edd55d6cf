"""docs/comparisons.md shows the real output of every bundled comparison: each scenario's
``[compare]`` vendors, run with one command (``emu compare examples/X.toml``)."""
import re
from pathlib import Path

import pytest

from emu.report.compare import compare

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "comparisons.md"
BLOCK = re.compile(r"```\n\$ emu compare (examples/\S+\.toml)\n(.*?)```", re.S)


def blocks() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in BLOCK.finditer(DOC.read_text())}


def test_the_doc_shows_a_comparison_for_each_question():
    shown = blocks()
    assert len(shown) >= 5
    for scenario in shown:
        assert "[compare]" in (ROOT / scenario).read_text()


@pytest.mark.parametrize("scenario", sorted(blocks()))
def test_the_doc_shows_the_real_output(scenario, plugins, monkeypatch):
    monkeypatch.chdir(ROOT)                 # the table names the scenario as given
    table = compare(scenario, [], plugins=plugins)
    assert table.render() == blocks()[scenario]
