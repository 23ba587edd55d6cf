"""Plugin discovery, validation and listing (``emu.plugins``)."""
import importlib.metadata
import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from emu.plugins import DEFAULT_PLUGINS, format_plugins, import_plugin_file, load_plugins

HERE = Path(__file__).parent / "plugins"


def fixture(name: str) -> str:
    return str(HERE / f"{name}.py")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("EMU_DISABLE_PLUGIN_AUTOLOAD", "EMU_BLOCK_PLUGINS", "EMU_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


def problems_of(plugins, name):
    return [p.reason for p in plugins.problems if p.plugin == name]


def info(plugins, name):
    (found,) = [i for i in plugins.infos if i.name == name]
    return found


def names(plugins):
    return [i.name for i in plugins.infos]


# -- discovery ------------------------------------------------------------------------------------


def test_builtins_load_first_and_core_points_come_first():
    plugins = load_plugins(autoload=False)
    loaded = [n for n in names(plugins) if n in DEFAULT_PLUGINS]
    assert loaded == [n for n in DEFAULT_PLUGINS if n in loaded]
    assert "emu.builtin_points" in loaded
    assert info(plugins, "emu.builtin_points").source == "builtin"
    from emu.builtin_points import CORE_POINTS

    assert list(plugins.probe_points)[: len(CORE_POINTS)] == [p.name for p in CORE_POINTS]


def test_plain_comes_from_its_entry_point():
    plugins = load_plugins()
    plain = info(plugins, "plain")
    version = importlib.metadata.version("emu")
    assert plain.source == f"entry point 'plain' (distribution emu {version})"
    assert plain.version == version
    assert problems_of(plugins, "plain") == []


def test_plain_package_directory_is_a_plugin_source():
    import emu_plain

    plugins = load_plugins()
    assert Path(emu_plain.__file__).resolve().parent in plugins.plugin_sources()


def test_autoload_off_by_argument():
    assert "plain" not in names(load_plugins(autoload=False))


def test_autoload_off_by_environment(monkeypatch):
    monkeypatch.setenv("EMU_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "plain" not in names(load_plugins())


def test_file_plugin_loads_with_version_and_source():
    plugins = load_plugins([fixture("good_vendor")], autoload=False)
    good = info(plugins, "good_vendor")
    assert good.source == f"file {HERE.resolve() / 'good_vendor.py'}"
    assert good.version == "1.2.3"
    assert good.provides == ["vendor good"]
    assert plugins.vendor_plugin("good") == "good_vendor"
    assert HERE.resolve() / "good_vendor.py" in plugins.plugin_sources()


def test_module_name_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    plugins = load_plugins(["site_extras"], autoload=False)
    extras = info(plugins, "site_extras")
    assert extras.source == "module site_extras"
    assert extras.version == "-"
    assert "site:tick" in plugins.probe_points


def test_same_file_twice_loads_once():
    plugins = load_plugins([fixture("good_vendor"), fixture("good_vendor")], autoload=False)
    assert names(plugins).count("good_vendor") == 1
    assert problems_of(plugins, "good_vendor") == []
    assert import_plugin_file(fixture("good_vendor")) is import_plugin_file(fixture("good_vendor"))


def test_two_plugins_with_one_name(tmp_path):
    other = tmp_path / "good_vendor.py"
    other.write_text("")
    plugins = load_plugins([fixture("good_vendor"), str(other)], autoload=False)
    (reason,) = problems_of(plugins, "good_vendor")
    assert "already loaded" in reason and str(other) in reason


def test_missing_file_is_a_problem(tmp_path):
    plugins = load_plugins([str(tmp_path / "nowhere.py")], autoload=False)
    (reason,) = problems_of(plugins, "nowhere")
    assert "FileNotFoundError" in reason


# -- blocking -------------------------------------------------------------------------------------


def test_blocked_plugin_is_never_imported():
    plugins = load_plugins([fixture("good_vendor"), fixture("import_error")], autoload=False,
                           blocked=["import_error"])
    assert problems_of(plugins, "import_error") == []
    assert "good" in plugins.vendors


def test_blocking_an_entry_point_and_by_environment(monkeypatch):
    monkeypatch.setenv("EMU_BLOCK_PLUGINS", "good_vendor, plain")
    plugins = load_plugins([fixture("good_vendor")])
    assert "plain" not in names(plugins) and "good_vendor" not in names(plugins)
    assert "plain" not in names(load_plugins(blocked=["plain"]))


# -- broken plugins never stop the others ----------------------------------------------------------

BROKEN = {
    "import_error": "import failed: ModuleNotFoundError: No module named "
                    "'emu_no_such_module_anywhere'",
    "bad_signature": "Argument(s) {'config'} are declared in the hookimpl",
    "no_spec": "unknown hook 'emu_vendor'",
    "raises": "emu_vendors raised RuntimeError: firmware table missing",
    "bad_kernel": "kernel 'gmem_max_mapping_level' takes (V, gfn) but the point passes",
    "wrong_record": "emu_vendors returned a ProbePoint 'wrong:record'",
}


def test_every_broken_plugin_is_reported_and_the_good_one_loads():
    paths = [fixture(n) for n in BROKEN] + [fixture("good_vendor")]
    with capture_logs() as logs:
        plugins = load_plugins(paths, autoload=False)
    for name, expected in BROKEN.items():
        reasons = problems_of(plugins, name)
        assert any(expected in r for r in reasons), (name, reasons)
        assert not any("Traceback" in r for r in reasons)
    assert list(plugins.vendors) == ["good"]
    assert plugins.vendor_plugin("good") == "good_vendor"
    warned = {e["plugin"] for e in logs if e["log_level"] == "warning"}
    assert set(BROKEN) <= warned
    # dropped plugins are not listed; a plugin with only a bad record still is
    for name in ("import_error", "bad_signature", "no_spec", "raises"):
        assert name not in names(plugins)
    assert "wrong:fine" in plugins.probe_points


def test_bad_kernel_names_an_unknown_point():
    plugins = load_plugins([fixture("bad_kernel")], autoload=False)
    (reason,) = problems_of(plugins, "bad_kernel")
    assert "kernel 'fly' is not a point" in reason
    assert "bad_kernel" not in plugins.vendors


def test_wrong_container_type():
    plugins = load_plugins([fixture("wrong_record")], autoload=False)
    assert any("emu_phase_kinds returned str, expected a list of PhaseKind" in r
               for r in problems_of(plugins, "wrong_record"))


def test_invalid_records_are_dropped_one_by_one():
    plugins = load_plugins([fixture("site_extras"), fixture("bad_records")], autoload=False)
    reasons = "\n".join(problems_of(plugins, "bad_records"))
    assert "vendor 'dict_state': state must be a namedtuple class" in reasons
    assert "vendor 'bad_point': probe point 'flush' is not of the form provider:name" in reasons
    assert "probe point 'nocolon' is not of the form provider:name" in reasons
    assert ("probe point 'kvm:fault' is already provided by plugin 'emu.builtin_points'; "
            "the one from 'bad_records' is ignored") in reasons
    assert "phase kind 'site_idle' is already provided by plugin 'site_extras'" in reasons
    assert plugins.vendors == {}
    assert plugins.probe_points["kvm:fault"].doc != "already the core's"
    assert info(plugins, "bad_records").provides == ["phase bad_records_phase"]


def test_vendor_point_clashing_with_a_core_point(tmp_path):
    src = Path(fixture("good_vendor")).read_text().replace('"good:flush"', '"kvm:fault"')
    (tmp_path / "clash.py").write_text(src)
    plugins = load_plugins([str(tmp_path / "clash.py")], autoload=False)
    assert any("probe point 'kvm:fault' is already declared outside the vendor" in r
               for r in problems_of(plugins, "clash"))


def test_duplicate_vendor_second_is_rejected_naming_both(tmp_path):
    shutil.copy(fixture("good_vendor"), tmp_path / "good_again.py")
    plugins = load_plugins([fixture("good_vendor"), str(tmp_path / "good_again.py")],
                           autoload=False)
    (reason,) = problems_of(plugins, "good_again")
    assert "vendor 'good' is already provided by plugin 'good_vendor'" in reason
    assert "'good_again' is ignored" in reason
    assert plugins.vendor_plugin("good") == "good_vendor"


def test_duplicate_plain_loses_to_the_entry_point():
    if "plain" not in load_plugins().vendors:
        pytest.skip("emu_plain is still a placeholder without a vendor")
    plugins = load_plugins([fixture("duplicate_vendor")])
    assert plugins.vendor_plugin("plain") == "plain"
    (reason,) = problems_of(plugins, "duplicate_vendor")
    assert "vendor 'plain' is already provided by plugin 'plain'" in reason


def test_duplicate_plain_without_the_entry_point_loads():
    plugins = load_plugins([fixture("duplicate_vendor")], autoload=False)
    assert plugins.vendor_plugin("plain") == "duplicate_vendor"


def test_cost_override_conflicts_and_bad_tables():
    plugins = load_plugins([fixture("good_vendor"), fixture("site_extras"),
                            fixture("costs_conflict"), fixture("duplicate_vendor")],
                           autoload=False)
    assert plugins.cost_overrides("good") == {"good_flush": 42, "good_other": 5}
    reasons = "\n".join(problems_of(plugins, "costs_conflict"))
    assert "cost 'good_flush' of vendor 'good' is already overridden by plugin 'site_extras'" \
        in reasons
    assert "emu_cost_overrides('plain') must return a dict" in reasons
    assert plugins.cost_overrides("plain") == {}
    assert "costs good" in info(plugins, "costs_conflict").provides


# -- tracing and listing ---------------------------------------------------------------------------


def test_trace_logs_every_hook_call(monkeypatch):
    monkeypatch.setenv("EMU_TRACE_PLUGINS", "1")
    with capture_logs() as logs:
        load_plugins([fixture("good_vendor")], autoload=False)
    calls = [e for e in logs if e["event"] == "plugin hook call"]
    assert {"emu_vendors", "emu_probe_points", "emu_cost_overrides"} <= {e["hook"] for e in calls}
    assert any(e["event"] == "plugin hook result" for e in logs)


def test_no_trace_by_default():
    with capture_logs() as logs:
        load_plugins([fixture("good_vendor")], autoload=False)
    assert not [e for e in logs if e["event"].startswith("plugin hook")]


def test_format_plugins_table_and_problems():
    plugins = load_plugins([fixture("good_vendor"), fixture("raises")])
    text = format_plugins(plugins)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SOURCE", "PROVIDES"]
    good = next(line for line in lines if line.startswith("good_vendor "))
    assert "1.2.3" in good and "vendor good" in good
    assert "17 probes" in next(line for line in lines if line.startswith("emu.builtin_points"))
    assert "problems:" in lines
    assert "  raises: emu_vendors raised RuntimeError: firmware table missing" in lines
    assert all(len(line) <= 100 for line in lines), text
    verbose = format_plugins(plugins, verbose=True)
    assert "kvm:fault" in verbose and "kvm:fault" not in text


def test_format_without_problems_has_no_problem_section():
    plugins = load_plugins([fixture("good_vendor")], autoload=False, blocked=DEFAULT_PLUGINS)
    assert plugins.problems == []
    assert "problems:" not in format_plugins(plugins)
