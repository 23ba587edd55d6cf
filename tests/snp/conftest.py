"""The snp tests load the plugin as an installed distribution does (the ``emu`` entry point
``snp``) or, where the installed metadata predates it, by module name: the same module either
way, so one compiled driver serves both."""
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent.parent / "plugins"

try:
    import emu_snp  # noqa: F401
except ImportError:          # an install that does not map the in-repo plugin yet
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture(scope="session")
def plugins():
    from emu.plugins import load_plugins

    loaded = load_plugins(plugin_paths=("emu_snp",))
    assert "snp" in loaded.vendors, loaded.problems
    return loaded
