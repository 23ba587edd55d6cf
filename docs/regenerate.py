"""Rewrite the command outputs shown in docs/compare.md and docs/comparisons.md from real runs.

    python docs/regenerate.py

The tests (tests/tdx/test_tdx_examples.py, tests/tdx/test_vs_snp.py) fail when a shown output
no longer matches what emu prints; after a change that moves a number or adds a row, run this
and read the notes around each table again: they quote its numbers.
"""
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from emu.api import load_plugin_set
    from emu.report.compare import compare

    os.chdir(ROOT)
    plugins = load_plugin_set()

    def table(scenario: str) -> str:
        return compare(scenario, [], plugins=plugins).render()

    doc = ROOT / "docs" / "comparisons.md"
    text = re.sub(r"(```\n\$ emu compare (examples/\S+\.toml)\n)(.*?)```",
                  lambda m: m.group(1) + table(m.group(2)) + "```", doc.read_text(), flags=re.S)
    doc.write_text(text)
    doc = ROOT / "docs" / "compare.md"
    text = re.sub(r"```\nemu compare  scenario (examples/tdx-policies\.toml).*?```",
                  lambda m: "```\n" + table(m.group(1)) + "```", doc.read_text(), flags=re.S)
    doc.write_text(text)


if __name__ == "__main__":
    main()
