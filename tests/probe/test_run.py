"""Probe programs running with a workload (plain vendor): every feature against numbers the
core counts on its own, so a wrong aggregation, a lost event or a double count shows."""
import io
import json

import pytest

from emu.probe.errors import ProbeError
from tests.model.scenarios import REGIONS, phase, scenario, vm

TOUCH = scenario(phase("touch"))
#: the touched 1 GiB guest maps 512 2M leaves; teardown zaps them again
CHURN = scenario(vm("4k"), phase("touch"), phase("punch", size="64MiB"))


@pytest.fixture
def probe(run_toml):
    """Run a scenario with a probe script; returns (result, text output)."""
    def _run(script, text=TOUCH, **kw):
        out = io.StringIO()
        result = run_toml(text, probes=[script], probe_stream=out, **kw)
        return result, out.getvalue()
    return _run


def maps(result) -> dict:
    return {m.name: dict(m.entries) for m in result.probes.maps()}


def test_count_matches_the_cores_own_counters(probe):
    r, _ = probe("kvm:map { @a = count(); @k[args.level] = count(); }"
                 "kvm:map /1/ { @b = count(); } kvm:zap { @z[probe] = count(); }")
    m = maps(r)
    installed = sum(r["mappings"]["installed"].values())
    assert m["@a"][()] == m["@b"][()] == installed == REGIONS
    assert m["@k"] == {("2M",): REGIONS}
    assert m["@z"] == {("kvm:zap",): sum(r["mappings"]["zapped"].values())}


def test_events_beyond_the_ring_are_never_lost(probe):
    """A 4K-backed guest maps and zaps 262,144 leaves, hundreds of ring-fulls per operation."""
    r, _ = probe("kvm:map /args.level == 0/ { @m = count(); } kvm:zap /1/ { @z = count(); }",
                 CHURN)
    m = maps(r)
    assert m["@m"][()] == r["mappings"]["installed"]["4K"] == 262144
    assert m["@z"][()] == sum(r["mappings"]["zapped"].values())
    assert r["probes"]["events_lost"] == 0


def test_sum_min_max_avg_stats_hist_lhist(probe):
    r, text = probe("kvm:map { @s = sum(args.level); @lo = min(args.gfn); @hi = max(args.gfn); "
                    "@a = avg(args.level); @st = stats(512); @h = hist(args.gfn); "
                    "@l = lhist(args.gfn, 0, 262144, 65536); }")
    m = maps(r)
    assert m["@s"][()] == REGIONS
    assert m["@lo"][()] == 0 and m["@hi"][()] == 262144 - 512
    assert m["@a"][()] == (REGIONS, REGIONS)
    assert m["@st"][()] == (REGIONS, 512 * REGIONS)
    assert sum(m["@h"][()]) == REGIONS and m["@h"][()][1] == 1      # gfn 0
    assert m["@l"][()][1:5] == [128, 128, 128, 128]
    assert "@l:\n" + f"{'[0, 64K)':<16}{128:>8} |" in text
    assert "@st: { .count = 512, .average = 512, .total = 262144 }" in text


def test_begin_printf_end_and_exit_maps_in_name_order(probe):
    r, text = probe('BEGIN { printf("start %s\\n", probe); } kvm:map { @b = count(); @a = count(); }'
                    'END { printf("end %d maps\\n", @a); }')
    assert text.startswith("start BEGIN\n")
    assert "end 512 maps\n" in text
    assert text.index("@a: 512") < text.index("@b: 512")


def test_arithmetic_follows_bpf_and_variables_work(probe):
    """Division truncates toward zero; by zero it gives 0, the remainder by zero the dividend;
    shifts use the low 6 bits of the count."""
    r, text = probe('BEGIN { $z = 0; printf("%d %d %d %d %d %d\\n", -7 / 2, -7 % 2, 5 / $z, '
                    '5 % $z, 1 << 65, -8 >> 1); '
                    '$x = 3; $x += 4; $x *= 2; printf("%d %d %d\\n", $x, $x > 10 ? 1 : 2, !$x); }')
    assert text.startswith("-3 -1 0 5 2 -4\n14 1 0\n")


def test_maps_with_delete_has_key_clear_zero(probe):
    r, text = probe("kvm:map { @seen[args.gfn / 512 % 4] = count(); @n++; }"
                    "END { delete(@seen, 1); printf(\"%d %d\\n\", has_key(@seen, 1), "
                    "has_key(@seen, 2)); zero(@n); @t = 5; clear(@t); }")
    m = maps(r)
    assert sorted(m["@seen"]) == [(0,), (2,), (3,)]
    assert m["@seen"][(0,)] == 128
    assert m["@n"] == {(): 0}
    assert "@t" not in m or m["@t"] == {}
    assert text.startswith("0 1\n")


def test_interval_fires_on_virtual_time(probe):
    r, text = probe("interval:us:100 { @ticks = count(); } kvm:map { @m = count(); }")
    ticks = maps(r)["@ticks"][()]
    assert ticks == r["time"]["virtual_ns"] // 100_000


def test_print_and_clear_in_an_interval_act_when_they_run(probe):
    r, text = probe("kvm:map { @ = count(); } interval:us:100 { print(@); clear(@); }")
    during, _, at_exit = text.rpartition("\n\n")
    printed = [int(line.split(": ")[1]) for line in during.splitlines() if line.startswith("@: ")]
    left = maps(r).get("@", {}).get((), 0)
    assert len(printed) > 3 and max(printed) < REGIONS
    assert sum(printed) + left == REGIONS
    assert at_exit == (f"@: {left}\n" if left else "")


def test_exit_stops_the_workload_at_that_operation(probe):
    r, text = probe('emu:op /args.kind == "access"/ { @n = count(); if (@n == 100) { exit(); } }')
    assert maps(r)["@n"][()] == 100
    assert r.session.ops_done < r["operations"]["total"] + 10**9
    assert r["operations"]["by_kind"]["access"] == 100


def test_after_exit_every_vm_is_still_torn_down(probe):
    two = scenario(vm("thp", name="a"), vm("thp", name="b"), phase("touch"))
    r, _ = probe('emu:op /args.kind == "access"/ { @n = count(); if (@n == 10) { exit(); } }',
                 two)
    assert r["operations"]["by_kind"]["vm_destroy"] == 2
    assert r["memory"]["after_teardown"]["guest_private"] == 0
    assert r["memory"]["after_teardown"]["guest_shared"] == 0


def test_a_full_map_drops_updates_and_says_so(probe, capsys):
    r, _ = probe("let @m = hash(10);\nkvm:map { @m[args.gfn] = count(); }")
    assert len(maps(r)["@m"]) == 10
    assert r.probes.dropped() == {"@m": REGIONS - 10}
    assert "map @m was full (10 keys): 502 updates dropped" in capsys.readouterr().err


def test_json_output(probe, run_toml):
    out = io.StringIO()
    run_toml(TOUCH, probes=['BEGIN { printf("hi\\n"); } kvm:map { @[args.level] = count(); }'],
             probe_stream=out, probe_json=True)
    docs = [json.loads(line) for line in out.getvalue().splitlines() if line]
    assert docs[0] == {"type": "printf", "data": "hi\n"}
    assert {"type": "map", "data": {"@": {"2M": REGIONS}}} in docs


def test_the_same_run_prints_the_same_bytes(probe):
    script = "kvm:map { @[args.gfn % 7] = count(); @h = hist(args.pfn); }"
    assert probe(script, CHURN)[1] == probe(script, CHURN)[1]


def test_check_replays_do_not_count_twice(probe):
    r, _ = probe("kvm:map { @m = count(); } kvm:map /1/ { @r = count(); }", check=True)
    assert maps(r)["@m"][()] == maps(r)["@r"][()] == REGIONS


def test_a_bad_script_fails_before_the_run(run_toml):
    with pytest.raises(ProbeError) as e:
        run_toml(TOUCH, probes=["kvm:map { @x = count(); @x = sum(1); }"])
    assert "cannot also hold sum()" in str(e.value)
