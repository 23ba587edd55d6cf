"""The verifier: every kind of mistake is an error at its line and column, before anything runs."""
import pytest

from emu.builtin_points import CORE_POINTS
from emu.probe.compile import Script, catalog_for, check_scripts
from emu.probe.errors import ProbeError
from emu.records import Field, ProbePoint
from tests.probe.carets import assert_points_at

VENDOR_POINT = ProbePoint("fw:call", "a firmware call", (
    Field("call", "fw_call", "which call", ("ADD", "REMOVE")), Field("ns", "ns")))
#: declared by a plugin that is loaded but is not the run's vendor
OTHER_VENDOR = {"other:thing"}


def catalog():
    points = [*CORE_POINTS, VENDOR_POINT]
    return catalog_for(points, {p.name for p in points} | OTHER_VENDOR)


def check(src):
    return check_scripts([Script(src, "t.bt")], catalog())


def error(src) -> ProbeError:
    with pytest.raises(ProbeError) as e:
        check(src)
    return e.value


def test_a_good_script_is_typed_and_resolved():
    c = check('let @big = hash(10000);\n'
              'kvm:split, kvm:merge /args.cause == "punch"/ { @[probe, args.level] = count(); '
              '@big[args.gfn] = sum(512); }\n'
              'fw:call { @lat[args.call] = hist(args.ns, 2); @l = lhist(args.ns, 0, 100, 10); }\n'
              'interval:ms:10 { print(@lat); clear(@lat); }\n'
              'END { printf("%d %s\\n", nsecs, probe); }')
    assert [b.kind for b in c.blocks] == ["event", "event", "interval", "end"]
    assert c.maps["@"].kind == "count"
    assert [str(t) for t in c.maps["@"].key_types] == ["probe", "level"]
    assert c.maps["@big"].max_keys == 10000
    assert c.maps["@lat"].hist_bits == 2 and c.maps["@l"].lhist == (0, 100, 10)
    assert c.blocks[2].interval_ns == 10_000_000
    assert c.formats == [("%d %s\n", c.formats[0][1])]


def test_wildcards_match_points():
    c = check("kvm:*map* { @ = count(); }")
    names = [c.catalog.points[p].name for p in c.blocks[0].points]
    assert names == ["kvm:map"]
    c = check("*:split { @ = count(); }")
    assert [c.catalog.points[p].name for p in c.blocks[0].points] == ["kvm:split"]


def test_a_point_of_another_loaded_vendor_is_accepted_and_attaches_nothing():
    c = check("other:thing { @ = count(); }")
    assert c.blocks[0].points == []


def test_count_only_points_need_no_events():
    c = check("kvm:map { @ = count(); @p[probe] = count(); } kvm:zap { @z = count(); } "
              "kvm:zap /args.level == 1/ { @big = count(); } kvm:fault { @f = count(); } "
              "END { print(@f); }")
    index = c.catalog.index
    assert c.count_points == {index["kvm:map"]: [("@", False), ("@p", True)]}
    assert index["kvm:zap"] not in c.count_points      # a predicate on one of its blocks
    assert index["kvm:fault"] not in c.count_points    # @f is printed by the program


@pytest.mark.parametrize("src,line,col,words", [
    ("kvm:splt { @ = count(); }", 1, 1, "'kvm:splt' is not a probe point; did you mean 'kvm:split'"),
    ("kvm:nothing* { @ = count(); }", 1, 1, "'kvm:nothing*' matches no probe point"),
    ("bogus { @ = count(); }", 1, 1, "unknown probe 'bogus'"),
    ("interval:min:3 { exit(); }", 1, 1, "bad interval probe"),
    ("BEGIN, kvm:map { exit(); }", 1, 1, "cannot share one block"),
    ("kvm:map { @ = count(); }\nkvm:zap { @[args.lvl] = count(); }", 2, 18,
     "kvm:zap has no field 'lvl'; did you mean 'level'"),
    ("kvm:map, kvm:pt_alloc { @[args.gfn] = count(); }", 1, 32, "kvm:pt_alloc has no field 'gfn'"),
    ("BEGIN { @ = args.gfn; }", 1, 13, "args exists only in point probes"),
    ("kvm:map { @x = count(); }\nkvm:zap { @x = sum(1); }", 2, 11,
     "map @x holds count() values (line 1) and cannot also hold sum() values"),
    ("kvm:map { @x[args.gfn] = count(); }\nkvm:zap { @x[args.gfn, 1] = count(); }", 2, 11,
     "map @x is keyed by [int] elsewhere, here by [int, int]"),
    ("kvm:map { @x[args.level] = count(); @x[args.gfn] = count(); }", 1, 37,
     "keyed by [level] elsewhere, here by [int]"),
    ("kvm:map { @x = hist(args.gfn); }\nEND { $y = @x; }", 2, 12, "cannot be read as a number"),
    ("END { $a = $b + 1; }", 1, 12, "$b is used before it is assigned"),
    ("END { print(@nope); }", 1, 13, "map @nope is never assigned"),
    ("END { frobnicate(1); }", 1, 7, "unknown function frobnicate()"),
    ("END { @ = count(1); }", 1, 11, "count() takes 0 arguments"),
    ("END { $x = count(); }", 1, 12, "count() must be assigned to a map"),
    ("END { @ = lhist(1, 10, 0, 1); }", 1, 11, "min < max"),
    ("END { @ = hist(1, 9); }", 1, 19, "0 to 5"),
    ('END { printf("%d %d\\n", 1); }', 1, 14, "printf:"),
    ('END { printf("%d\\n", "x"); }', 1, 14, "printf:"),
    ("END { printf(1); }", 1, 7, "needs a format string"),
    ('kvm:zap /args.cause == "punchh"/ { @ = count(); }', 1, 24,
     "'punchh' is not a cause; did you mean 'punch'"),
    ('kvm:zap /args.gfn == "x"/ { @ = count(); }', 1, 22, "compared with a named value"),
    ("END { $x = nsec; }", 1, 12, "unknown identifier 'nsec'; did you mean 'nsecs'"),
    ("let @m = lru(5);\nEND { @m = count(); }", 1, 1, "unknown map type 'lru'"),
    ("let @m = hash(5);\nEND { exit(); }", 1, 1, "declared but never assigned"),
    ("END { exit(1); }", 1, 12, "exit() takes no arguments"),
    ("END { print(@m, -3); }\nBEGIN { @m = 1; }", 1, 17, "must not be negative"),
    ("END { $x = 1; $x = probe; }", 1, 15, "$x holds int values and cannot be assigned probe"),
])
def test_errors_name_the_spot(src, line, col, words):
    assert_points_at(error(src), src, line, col, words)


def test_errors_in_a_second_script_name_that_file():
    scripts = [Script("kvm:map { @ = count(); }\n", "a.bt"),
               Script("\nkvm:zap { @x = nope; }\n", "b.bt")]
    with pytest.raises(ProbeError) as e:
        check_scripts(scripts, catalog())
    assert str(e.value).startswith("b.bt:2:16: error: unknown identifier 'nope'")


def test_a_map_too_big_for_memory_is_refused():
    e = error("let @h = hash(4000000);\nkvm:map { @h[args.gfn] = hist(args.pfn, 5); }")
    assert "declare fewer keys" in e.message and e.line == 1
