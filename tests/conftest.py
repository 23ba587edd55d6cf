"""Shared fixtures: one compiled-code cache for the whole test run (numba compile time is the
suite's biggest cost), and a helper that runs a scenario written inline."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("EMU_CACHE_DIR", str(ROOT / ".emu-cache"))


@pytest.fixture(scope="session")
def plugins():
    from emu.plugins import load_plugins

    return load_plugins()


@pytest.fixture
def run_toml(plugins, tmp_path):
    """Run a scenario given as TOML text; returns the Result."""
    import emu

    def _run(text: str, vendor: str = "plain", **kw):
        path = tmp_path / "scenario.toml"
        path.write_text(text)
        return emu.run(path, vendor, plugins=plugins, **kw)

    return _run


#: test directories whose tests share one vendor's compiled driver
VENDOR_DIRS = ("tdx", "snp")


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): run on the worker of that group")
    _configure_groups(config)


def _configure_groups(config):
    """Under xdist, send each vendor's tests to one worker (``loadgroup``): a cold compile of a
    vendor's driver takes minutes, and with plain ``load`` scheduling every worker compiled
    every vendor, so the cold suite paid each compile once per worker. The controller switches
    ``-n``'s ``load`` to ``loadgroup``; workers, which parse the command line again, are told
    to tag their tests' node ids with the group (what xdist does for ``--dist loadgroup``)."""
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("emu_loadgroup"):
        config.option.loadgroup = True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist, on the controller: tell the worker whether tests are grouped."""
    node.workerinput["emu_loadgroup"] = node.config.getvalue("dist") == "loadgroup"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark each vendor directory's tests as one group (before xdist names the groups)."""
    for item in items:
        parent = Path(str(item.fspath)).parent.name
        if parent in VENDOR_DIRS:
            item.add_marker(pytest.mark.xdist_group(parent))
