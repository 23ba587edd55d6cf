"""The plugin contract (``emu.hookspecs``): documented, exemplified, and each hook exercised.

The meta-tests follow datasette: every hook has a docstring with an example that really loads
as a plugin, and a ``test_hook_<name>`` test somewhere under ``tests/``.
"""
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from emu import hookspecs
from emu.plugins import load_plugins

HERE = Path(__file__).parent
PLUGINS = HERE / "plugins"

HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if callable(fn) and hasattr(fn, "emu_spec"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("EMU_DISABLE_PLUGIN_AUTOLOAD", "EMU_BLOCK_PLUGINS", "EMU_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


def example(hook: str) -> str:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    block = doc.split("**Example:**", 1)[1].split(".. code-block:: python", 1)[1]
    return textwrap.dedent(block.strip("\n"))


def load(*fixtures):
    return load_plugins([str(PLUGINS / f"{f}.py") for f in fixtures], autoload=False)


# -- meta-tests ------------------------------------------------------------------------------------


def test_the_contract_is_the_expected_one():
    assert HOOKS == ["emu_cost_overrides", "emu_phase_kinds", "emu_probe_points",
                     "emu_report_sections", "emu_vendors"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc and "**Example:**" in doc and ":returns:" in doc
    params = [p for p in inspect.signature(getattr(hookspecs, hook)).parameters]
    for param in params:
        assert f":param {param}:" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_example_loads_as_a_plugin(hook, tmp_path):
    code = example(hook)
    assert f"def {hook}(" in code
    path = tmp_path / f"example_{hook}.py"
    path.write_text(code)
    plugins = load_plugins([str(path)], autoload=False)
    assert [p for p in plugins.problems if p.plugin == path.stem] == []
    assert path.stem in [i.name for i in plugins.infos]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    sources = "\n".join(p.read_text() for p in HERE.rglob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", sources, re.M), f"write test_hook_{hook}"


def test_module_docstring_states_the_design_rule():
    assert "once, at setup" in hookspecs.__doc__ and "per event" in hookspecs.__doc__


# -- one test per hook -----------------------------------------------------------------------------


def test_hook_emu_vendors():
    plugins = load("good_vendor")
    vendor = plugins.vendors["good"]
    assert vendor.kernels["gmem_max_mapping_level"](None, None, 0, 0, 0) == 1
    state = vendor.make_state(None, {})
    assert type(state) is vendor.state and state.touched.shape == (1,)
    assert [p.name for p in vendor.points] == ["good:flush"]
    assert "good:flush" not in plugins.probe_points  # vendor points stay in the vendor


def test_hook_emu_probe_points():
    plugins = load("site_extras")
    names = list(plugins.probe_points)
    assert names.index("kvm:fault") < names.index("site:tick")


def test_hook_emu_phase_kinds():
    plugins = load("site_extras")
    kind = plugins.phase_kinds["site_idle"]
    assert kind.fields == {"ns": int} and kind.generate(None, None, None) == []


def test_hook_emu_report_sections():
    plugins = load("site_extras")
    section = plugins.report_sections["site"]
    assert section.title == "Site" and section.render(None) == [("site", "lab 3")]


def test_hook_emu_cost_overrides():
    plugins = load("good_vendor", "site_extras")
    assert plugins.cost_overrides("good") == {"good_flush": 42}
    assert plugins.cost_overrides("no_such_vendor") == {}
    assert plugins.cost_overrides("good") is not plugins.cost_overrides("good")
