"""The probe language's grammar: what parses into what, and syntax errors with a caret."""
import pytest

from emu.probe import ast as A
from emu.probe.errors import ProbeError
from emu.probe.parser import parse
from tests.probe.carets import assert_points_at


def test_block_with_predicate_and_statements():
    p = parse('kvm:split, kvm:merge /args.level == 1/ { @[args.cause] = count(); $x = 2; }')
    (b,) = p.blocks
    assert [x.spec for x in b.probes] == ["kvm:split", "kvm:merge"]
    assert isinstance(b.predicate, A.Binary) and b.predicate.op == "=="
    assign, var = b.body
    assert isinstance(assign, A.MapAssign) and assign.target.name == "@"
    assert isinstance(assign.value, A.Call) and assign.value.name == "count"
    assert isinstance(var, A.VarAssign) and var.name == "$x"


def test_precedence_is_cs():
    (b,) = parse("BEGIN { $x = 1 + 2 * 3 << 1 == 14 && 1 | 2; }").blocks
    e = b.body[0].value
    assert e.op == "&&"
    assert e.left.op == "=="
    assert e.left.left.op == "<<"
    assert e.left.left.left.op == "+"
    assert e.right.op == "|"


def test_division_inside_a_predicate_needs_parentheses():
    (b,) = parse("kvm:fault /(args.gfn / 512) % 2 == 0/ { @ = count() }").blocks
    assert b.predicate.left.left.op == "/"
    with pytest.raises(ProbeError):
        parse("kvm:fault /args.gfn / 512 == 0/ { @ = count() }")


def test_if_else_chain_and_increments():
    (b,) = parse("BEGIN { if ($a) { @x++ } else if (1) { --@y } else { $a += 2 } }").blocks
    s = b.body[0]
    assert isinstance(s, A.If) and isinstance(s.other[0], A.If)
    assert s.then[0].delta == 1 and s.other[0].then[0].delta == -1
    assert s.other[0].other[0].op == "+="


def test_map_declarations_strings_and_comments():
    p = parse('// counts\nlet @m = hash(100);\nBEGIN { /* x */ printf("a\\tb\\n"); }')
    assert p.decls[0].name == "@m" and p.decls[0].size == 100
    assert p.blocks[0].body[0].call.args[0].value == "a\tb\n"


def test_numbers():
    (b,) = parse("BEGIN { $a = 0x10 + 1_000; }").blocks
    e = b.body[0].value
    assert (e.left.value, e.right.value) == (16, 1000)


@pytest.mark.parametrize("src,line,col,message", [
    ("kvm:split { @x = ; }", 1, 18, "unexpected ';', expected an expression"),
    ("kvm:split\n  { @x = 3 $y }", 2, 12, "unexpected '$y', expected ';', '}' or an operator"),
    ('BEGIN { printf("abc) }', 1, 16, "unterminated string"),
    ("BEGIN { @x = 3 # }", 1, 16, "unexpected character '#'"),
    ('BEGIN { printf("\\q") }', 1, 17, "unknown escape sequence '\\q'"),
    ("{ @x = 1 }", 1, 1, "unexpected '{'"),
])
def test_syntax_errors_point_at_the_spot(src, line, col, message):
    with pytest.raises(ProbeError) as e:
        parse(src, "t.bt")
    assert_points_at(e.value, src, line, col, message)
