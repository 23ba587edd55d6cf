"""Scenario validation: every mistake names its place, says what is wrong and what is allowed."""
import copy
import glob
from pathlib import Path

import pytest

from emu.builtin_phases import emu_phase_kinds
from emu.records import PhaseKind
from emu.workload import (FieldSpec, ScenarioError, build_workload, load_scenario, parse_scenario,
                          phase_kind_map)
from emu.workload.schema import default_reserved

KINDS = {k.name: k for k in emu_phase_kinds()}
EXAMPLES = sorted(glob.glob(str(Path(__file__).parent.parent / "examples" / "*.toml")))
GiB, MiB = 1 << 30, 1 << 20

BASE = {
    "host": {"memory": "64GiB"},
    "vm": [{"name": "td0", "memory": "8GiB", "vcpus": 4},
           {"name": "tmpl", "memory": "1GiB", "start": False}],
    "phase": [{"kind": "boot"}],
}


def error(mutate) -> ScenarioError:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, KINDS, source="s.toml")
    return err.value


def test_base_parses_with_defaults():
    sc = parse_scenario(copy.deepcopy(BASE), KINDS, source="s.toml")
    assert sc.host.memory == 64 * GiB and sc.host.seed == 0 and sc.host.huge_folio_chance == 1.0
    assert sc.host.reserved == default_reserved(64 * GiB) == 656 * MiB
    vm = sc.vms[0]
    assert (vm.name, vm.vcpus, vm.memory, vm.backing, vm.count, vm.start) == ("td0", 4, 8 * GiB, "thp", 1, True)
    boot = sc.phases[0]
    assert boot.targets == ("td0",)           # '*' means VMs created at start, not templates
    assert boot.fields["image"] == 4 * MiB and boot.fields["accept"] == "eager"
    assert boot.fields["accept_level"] == 1    # LVL_2M
    assert boot.repeat == 1


def test_counted_vms_and_targets():
    def mut(d):
        d["vm"].append({"name": "w", "memory": "1GiB", "count": 3})
        d["phase"] = [{"kind": "touch", "vm": "w"}, {"kind": "idle", "vm": ["w-2", "td0", "w-2"]},
                      {"kind": "recover", "vm": "*"}]
    data = copy.deepcopy(BASE)
    mut(data)
    sc = parse_scenario(data, KINDS)
    assert [n for n, _ in sc.start_instances()] == ["td0", "w-0", "w-1", "w-2"]
    assert sc.phases[0].targets == ("w-0", "w-1", "w-2")
    assert sc.phases[1].targets == ("w-2", "td0")
    assert sc.phases[2].targets == ("td0", "w-0", "w-1", "w-2")


@pytest.mark.parametrize("mutate, place, words", [
    # unknown tables and fields, with the closest allowed name
    (lambda d: d.update(hots={}), "hots", ["unknown table", "did you mean 'host'", "allowed: [host]"]),
    (lambda d: d["host"].update(memroy="1GiB"), "host.memroy", ["did you mean 'memory'", "allowed:"]),
    (lambda d: d["vm"][0].update(cpus=2), "vm[0].cpus", ["did you mean 'vcpus'", "allowed:"]),
    (lambda d: d["phase"][0].update(acept="lazy"), "phase[0].acept", ["did you mean 'accept'", "accept_level"]),
    # missing required fields
    (lambda d: d.pop("host"), "host", ["missing", "memory"]),
    (lambda d: d["host"].pop("memory"), "host.memory", ["missing required field", "a size"]),
    (lambda d: d["vm"][0].pop("name"), "vm[0].name", ["missing required field"]),
    (lambda d: d["vm"][0].pop("memory"), "vm[0].memory", ["missing required field", "multiple of 2 MiB"]),
    (lambda d: d["phase"][0].pop("kind"), "phase[0].kind", ["missing required field", "boot, churn"]),
    (lambda d: d["phase"].append({"kind": "churn"}), "phase[1].template", ["missing required field"]),
    # wrong types
    (lambda d: d["vm"][0].update(vcpus="8"), "vm[0].vcpus", ["expected an integer", "from 1 to 1024"]),
    (lambda d: d["vm"][0].update(start="yes"), "vm[0].start", ["expected true or false"]),
    (lambda d: d["host"].update(huge_folio_chance="high"), "host.huge_folio_chance", ["expected a number"]),
    (lambda d: d["host"].update(memory=True), "host.memory", ["boolean"]),
    (lambda d: d.update(vm={"name": "x"}), "vm", ["[[vm]]"]),
    (lambda d: d.update(host=[1]), "host", ["expected a table"]),
    (lambda d: d["phase"][0].update(vm=3), "phase[0].vm", ["expected a VM name", "'*'"]),
    (lambda d: d["phase"].append({"kind": "convert", "region": "1GiB"}), "phase[1].region", ["two sizes"]),
    # out-of-range numbers and choices
    (lambda d: d["vm"][0].update(vcpus=0), "vm[0].vcpus", ["too small", "from 1 to 1024"]),
    (lambda d: d["vm"][0].update(vcpus=2000), "vm[0].vcpus", ["too large", "from 1 to 1024"]),
    (lambda d: d["host"].update(huge_folio_chance=1.5), "host.huge_folio_chance", ["from 0 to 1"]),
    (lambda d: d["host"].update(seed=-1), "host.seed", ["too small"]),
    (lambda d: d["vm"][0].update(backing="thb"), "vm[0].backing", ["'thb' is not allowed", "4k, thp, hugetlb-2m"]),
    (lambda d: d["phase"].append({"kind": "touch", "pattern": "zipfian"}), "phase[1].pattern",
     ["'zipfian' is not allowed; allowed: sequential, random, zipf"]),
    (lambda d: d["phase"][0].update(accept_level="1G"), "phase[0].accept_level", ["allowed: 4K, 2M"]),
    (lambda d: d["phase"][0].update(repeat=0), "phase[0].repeat", ["too small"]),
    (lambda d: d["phase"].append({"kind": "idle", "duration": "5 parsecs"}), "phase[1].duration",
     ["unknown unit", "ns, us, ms, s"]),
    (lambda d: d["phase"].append({"kind": "idle", "duration": 0}), "phase[1].duration", ["too short"]),
    # impossible sizes
    (lambda d: d["vm"][0].update(memory=0), "vm[0].memory", ["is zero", "at least 2 MiB"]),
    (lambda d: d["vm"][0].update(memory="-2MiB"), "vm[0].memory", ["negative"]),
    (lambda d: d["vm"][0].update(memory="3MiB"), "vm[0].memory", ["not a multiple of 2 MiB"]),
    (lambda d: d["host"].update(memory="63MiB"), "host.memory", ["not a multiple of 2 MiB"]),
    (lambda d: d["vm"][0].update(backing="hugetlb-1g", memory="1026MiB"), "vm[0].memory",
     ["1G hugetlb", "multiple of 1 GiB"]),
    (lambda d: d["phase"].append({"kind": "touch", "size": "6KiB"}), "phase[1].size", ["multiple of 4 KiB"]),
    (lambda d: d["phase"].append({"kind": "touch", "size": "16GiB"}), "phase[1].size",
     ["larger than VM 'td0' (8 GiB)", "at most 8 GiB"]),
    (lambda d: d["phase"].append({"kind": "convert", "region": ["2GiB", "1GiB"]}), "phase[1].region",
     ["not below end"]),
    (lambda d: d["phase"].append({"kind": "convert", "region": ["1GiB", "9GiB"]}), "phase[1].region",
     ["end 9 GiB is larger than VM 'td0'"]),
    (lambda d: d["phase"].append({"kind": "churn", "template": "tmpl", "touch": "2GiB"}), "phase[1].touch",
     ["larger than VM 'tmpl' (1 GiB)"]),
    (lambda d: d["phase"][0].update(lazy_accept="3MiB"), "phase[0].lazy_accept", ["multiple of 2 MiB"]),
    (lambda d: d["host"].update(reserved="64GiB"), "host.reserved", ["leaves no memory", "less than host.memory"]),
    # unknown phase kinds and VM names
    (lambda d: d["phase"].append({"kind": "bot"}), "phase[1].kind",
     ["'bot' is not a phase kind", "did you mean 'boot'", "allowed: boot, churn, convert"]),
    (lambda d: d["phase"].append({"kind": "touch", "vm": "td9"}), "phase[1].vm",
     ["no VM named 'td9'", "did you mean 'td0'", "allowed: '*', td0"]),
    (lambda d: d["phase"].append({"kind": "touch", "vm": "tmpl"}), "phase[1].vm", ["template"]),
    (lambda d: d["phase"].append({"kind": "churn", "template": "tmp"}), "phase[1].template",
     ["no VM named 'tmp'", "did you mean 'tmpl'"]),
    # names
    (lambda d: d["vm"].append({"name": "td0", "memory": "2MiB"}), "vm[2].name", ["already used by vm[0]"]),
    (lambda d: d["vm"].extend([{"name": "w", "memory": "2MiB", "count": 2}, {"name": "w-1", "memory": "2MiB"}]),
     "vm[3].name", ["'w-1' is already used by vm[2]"]),
    (lambda d: d["vm"][0].update(name="*"), "vm[0].name", ["not a usable name", "letters, digits"]),
    # the host is too small for the VMs that start together
    (lambda d: d["vm"][0].update(memory="60GiB", count=2), "host.memory",
     ["VMs created at start need 120 GiB but the host has 63.36 GiB after 656 MiB reserved"]),
])
def test_errors_name_the_place_and_what_is_allowed(mutate, place, words):
    err = error(mutate)
    msg = str(err)
    assert err.place == place
    assert msg.startswith(f"s.toml: {place}: "), msg
    for w in words:
        assert w in msg, msg
    assert isinstance(err, ValueError)


def test_toml_syntax_error_reports_file_line_and_column(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[host]\nmemory = "1GiB"\n\n[[vm]]\nname = td0\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(p, KINDS)
    e = err.value
    assert (e.line, e.column) == (5, 8)
    assert str(e).startswith(f"{p}: line 5, column 8: TOML syntax error: ")


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "nope.toml", KINDS)
    assert "cannot read" in str(err.value) and "nope.toml" in str(err.value)


def test_leading_comment_becomes_description(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('\n# What question?\n#\n#   emu run s.toml\n[host]\nmemory = "1GiB"\n# not this\n')
    sc = load_scenario(p, KINDS)
    assert sc.description == "What question?\n\n  emu run s.toml"
    assert sc.source == str(p) and sc.vms == () and sc.phases == ()


def test_churned_vms_that_do_not_fit_are_reported_by_planning():
    data = copy.deepcopy(BASE)
    data["vm"][1]["memory"] = "16GiB"
    data["phase"].append({"kind": "churn", "template": "tmpl", "count": 8, "concurrency": 4, "touch": "4MiB"})
    sc = parse_scenario(data, KINDS, source="s.toml")
    with pytest.raises(ScenarioError) as err:
        build_workload(sc, KINDS)
    assert err.value.place == "phase[1]"
    assert "VMs live at once need 72 GiB" in str(err.value)


@pytest.mark.parametrize("phase, place, words", [
    ({"kind": "convert", "pattern": "ranges", "range_size": "2MiB", "size": "3MiB"}, "phase[1].size",
     ["not a multiple of range_size 2 MiB"]),
    ({"kind": "convert", "size": "64MiB", "region": ["0", "32MiB"]}, "phase[1].size", ["do not fit"]),
    ({"kind": "punch", "pattern": "ranges", "range_size": "2MiB", "align": "1MiB", "size": "8MiB",
      "region": ["0", "7MiB"]}, "phase[1].size", ["do not fit", "at most"]),
    ({"kind": "punch", "pattern": "ranges", "range_size": "3MiB", "align": "2MiB"}, "phase[1].align",
     ["does not divide"]),
    ({"kind": "touch", "offset": "8GiB"}, "phase[1].offset", ["past the end"]),
    ({"kind": "touch", "offset": "7GiB", "size": "2GiB"}, "phase[1].size", ["past the end"]),
])
def test_checks_that_need_the_vm_happen_when_planning(phase, place, words):
    data = copy.deepcopy(BASE)
    data["phase"].append(phase)
    sc = parse_scenario(data, KINDS, source="s.toml")
    with pytest.raises(ScenarioError) as err:
        build_workload(sc, KINDS)
    assert err.value.place == place
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_every_example_parses_plans_and_says_how_to_run_it(path):
    text = Path(path).read_text()
    assert text.startswith("#"), "every example starts with the question it answers"
    sc = load_scenario(path, KINDS)
    name = Path(path).name
    assert (f"emu run examples/{name} --vendor " in sc.description
            or f"emu compare examples/{name} --vendor " in sc.description
            or f"emu compare examples/{name}" in sc.description and sc.compare_vendors)
    w = build_workload(sc, KINDS)
    assert 0 < w.estimated_ops <= 30_000_000


def test_examples_cover_the_required_scenarios():
    names = {Path(p).name for p in EXAMPLES}
    assert {"boot-64g.toml", "touch-random-1t.toml", "conversion-storm.toml", "hole-punch.toml",
            "folio-split-collapse.toml", "churn.toml", "lazy-accept.toml"} <= names


def test_plugin_kinds_with_dict_field_specs():
    def gen(fields, ctx):
        yield from ()

    kind = PhaseKind("balloon", "A balloon driver returns memory.",
                     {"size": {"type": "size", "doc": "bytes returned", "default": "1GiB", "bound": "vm"},
                      "mode": {"type": "choice", "doc": "how", "choices": ["free", "report"],
                               "default": "free"}}, gen)
    kinds = {**KINDS, "balloon": kind}
    data = copy.deepcopy(BASE)
    data["phase"].append({"kind": "balloon", "mode": "report"})
    sc = parse_scenario(data, kinds)
    assert dict(sc.phases[1].fields) == {"size": GiB, "mode": "report"}
    data["phase"][1]["mode"] = "inflate"
    with pytest.raises(ScenarioError, match=r"phase\[1\].mode: 'inflate' is not allowed; allowed: free, report"):
        parse_scenario(data, kinds)


@pytest.mark.parametrize("fields, words", [
    ({"x": FieldSpec("sizes", "d")}, "unknown type 'sizes'"),
    ({"x": FieldSpec("size", "")}, "needs a doc string"),
    ({"x": FieldSpec("size", "d", default="lots")}, "bad default"),
    ({"x": FieldSpec("choice", "d", default="a")}, "needs choices"),
    ({"vm": FieldSpec("int", "d", default=1)}, "reserved"),
    ({"x": FieldSpec("size", "d", default="1GiB", bound="tmpl")}, "bound must be"),
])
def test_bad_phase_kind_specs_are_rejected_at_setup(fields, words):
    kind = PhaseKind("bad", "doc", fields, lambda f, ctx: iter(()))
    with pytest.raises(ValueError, match=words):
        phase_kind_map([kind])


def test_scenarios_and_errors_pickle():
    import pickle

    sc = parse_scenario(copy.deepcopy(BASE), KINDS, source="s.toml")
    back = pickle.loads(pickle.dumps(sc))
    assert back == sc and set(back.phase_kinds) == set(KINDS)
    err = error(lambda d: d["vm"][0].update(backing="thb"))
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.place == "vm[0].backing"


def test_compare_table_lists_vendors(plugins):
    from emu.workload.schema import parse_scenario
    base = {"host": {"memory": "4GiB"}}
    assert parse_scenario({**base, "compare": {"vendors": ["tdx", "snp:gmem=thp"]}},
                          plugins.phase_kinds).compare_vendors == ("tdx", "snp:gmem=thp")
    for bad, where in (({"vendors": "tdx"}, "compare.vendors"), ({"vendor": ["tdx"]}, "compare.vendor"),
                       ({"vendors": []}, "compare.vendors"), ({"vendors": ["a", "a"]}, "compare.vendors")):
        with pytest.raises(ScenarioError) as e:
            parse_scenario({**base, "compare": bad}, plugins.phase_kinds)
        assert e.value.place == where
