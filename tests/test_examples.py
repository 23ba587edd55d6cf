"""Every bundled example runs on plain with ``--check`` and breaks no invariant.

``touch-random-1t`` is left out: checking a 1 TiB host after every batch takes minutes (it
passed when run by hand with ``emu run examples/touch-random-1t.toml --check``).
"""
from pathlib import Path

import pytest

import emu

EXAMPLES = sorted(p for p in (Path(__file__).resolve().parent.parent / "examples").glob("*.toml")
                  if p.stem != "touch-random-1t")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_check(path, plugins):
    r = emu.run(path, "plain", plugins=plugins, check=True)
    assert r["check"]["violation"] is None
    assert r["errors"]["total"] == 0
    mem = r["memory"]
    assert sum(mem["after_teardown"].values()) == mem["host_pages"]
    assert mem["after_teardown"]["kvm_page_table"] == 0
