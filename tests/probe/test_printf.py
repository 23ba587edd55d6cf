"""bpftrace's printf (emu.probe.printf): accepted formats, check messages, printed text.

Expected texts come from bpftrace's tests (tests/runtime/call, tests/async_action.cpp), its
issue #4501 and, for the C++-stream details, from src/format_string.cpp (FormatSpec::apply).
"""
import pytest

from emu.probe.printf import ConversionSpec, FormatError, check_format, format_printf, parse_format


# --- parsing ---------------------------------------------------------------------------------
def test_parse_pieces():
    pieces = parse_format("a%%b%-10s c%5llx")
    assert pieces[0] == "a%b" and pieces[2] == " c"
    s, x = pieces[1], pieces[3]
    assert isinstance(s, ConversionSpec) and s.offset == 4 and s.text == "%-10s"
    assert (s.left_align, s.width, s.conversion) == (True, 10, "s")
    assert (x.offset, x.width, x.length, x.conversion) == (11, 5, "ll", "x")


def test_parse_flags_in_bpftrace_order_only():
    # FormatSpec::regex takes the flags in the order - + space # 0; anything else is text
    spec = parse_format("%-+ #08.3hhd")[0]
    assert (spec.left_align, spec.show_sign, spec.space, spec.alternate, spec.zero_pad,
            spec.width, spec.precision, spec.length) == (True, True, True, True, True, 8, 3, "hh")
    assert parse_format("%0-5d") == ["%0-5d"]
    assert parse_format("100%") == ["100%"]
    assert parse_format("%y") == ["%y"]
    assert parse_format("%*d")[0].width is None


# --- checking --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, types, message, offset", [
    ("%d %s", ["int"], "not enough arguments for format string (1 supplied, 2 expected)", 3),
    ("x%d", ["int", "int"], "too many arguments for format string (2 supplied, 1 expected)", 3),
    ("%f %d", ["int"], "not enough arguments for format string (1 supplied, 2 expected)", 3),
    ("ab%5.2f", ["int"], "unsupported format specifier: f", 2),
    ("%n", ["int"], "unsupported format specifier: n", 0),
    ("x %d", ["str"], "unsupported format specifier for type 'string': d", 2),
    ("%s %c", ["int", "str"], "unsupported format specifier for type 'string': c", 3),
    ("%p", ["str"], "unsupported format specifier for type 'string': p", 0),
    ("%rx", ["int"], "unsupported format specifier for type 'int64': rx", 0),
])
def test_check_errors(fmt, types, message, offset):
    # messages of FormatString::check in bpftrace src/format_string.cpp
    with pytest.raises(FormatError) as err:
        check_format(fmt, types)
    assert err.value.message == message and str(err.value) == message
    assert err.value.offset == offset


@pytest.mark.parametrize("fmt, types", [
    ("%s %s", ["int", "str"]), ("%d%i%u%o%x%X%c%p", ["int"] * 8), ("100%%", []),
    ("%y and 50%", []), ("%-10s|%5d|%lu|%llx|%08x|%c", ["str", "int", "int", "int", "int", "int"]),
])
def test_check_accepts(fmt, types):
    check_format(fmt, types)


def test_check_rejects_unknown_argument_type():
    with pytest.raises(ValueError, match="expected 'int' or 'str'"):
        check_format("%d", ["float"])


# --- printing --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, args, text", [
    # tests/runtime/call
    ("hi!\n", [], "hi!\n"),
    ("value: %dms100\n", [100], "value: 100ms100\n"),
    ("Elapsed time: %llus\n", [1], "Elapsed time: 1s\n"),
    ("%dst: %sa; %dnd: %sb;; %drd: %sc;;; %dth: %sd;;;;", [1, "a", 2, "ab", 3, "abc", 4, "abcd"],
     "1st: aa; 2nd: abb;; 3rd: abcc;;; 4th: abcdd;;;;"),
    ("%hhx %hx %x %jx\n", [0x12345678abcdef] * 4, "ef cdef 78abcdef 12345678abcdef\n"),
    ("%c%c%c%c\n", [0x41, 0x42, 0x43, 0x44], "ABCD\n"),
    ("0x%lx -- 0x%lx\n", [0x55555555, 0x33333333], "0x55555555 -- 0x33333333\n"),
    # tests/async_action.cpp TEST_F(AsyncActionTest, printf)
    ("Multiple: %s=%d (0x%llx) char=%hhu", ["answer", 42, 0xDEADBEEF, ord("a")],
     "Multiple: answer=42 (0xdeadbeef) char=97"),
    # issue #4501 / PR #4510: the 0 flag pads with zeros
    (":%02hhx:\n", [2], ":02:\n"),
    # brendangregg's example in ajor/bpftrace PR #22 (format widths)
    ("%-8s %8s %s\n", ["TID", "PID", "COMM"], "TID           PID COMM\n"),
    ("%-8d %8d %s\n", [3669, 3645, "mysqld"], "3669         3645 mysqld\n"),
])
def test_bpftrace_examples(fmt, args, text):
    assert format_printf(fmt, args) == text


@pytest.mark.parametrize("fmt, arg, text", [
    # 64-bit values and length modifiers: no modifier means int / unsigned int
    ("%d", (1 << 32) + 5, "5"), ("%ld", (1 << 32) + 5, "4294967301"),
    ("%d", -1, "-1"), ("%u", -1, "4294967295"), ("%lu", -1, "18446744073709551615"),
    ("%x", -1, "ffffffff"), ("%lx", -1, "ffffffffffffffff"), ("%llX", -1, "FFFFFFFFFFFFFFFF"),
    ("%hhd", 255, "-1"), ("%hd", 0x18000, "-32768"), ("%hu", -1, "65535"),
    ("%Ld", (1 << 32) + 5, "5"),                      # not an integer length: as none
    ("%zd", -(1 << 40), "-1099511627776"), ("%jd", 1 << 62, "4611686018427387904"),
    ("%o", 8, "10"), ("%#o", 8, "010"), ("%#o", 0, "0"),
    ("%#x", 255, "0xff"), ("%#X", 255, "0XFF"), ("%#x", 0, "0"),
    ("%+d", 5, "+5"), ("%+d", 0, "+0"), ("%+d", -5, "-5"), ("%+u", 5, "5"),
    ("% d", 5, "5"),                                  # space flag: accepted, ignored
    ("%p", 0, "0"), ("%p", 4096, "0x1000"), ("%p", -1, "0xffffffffffffffff"),
    ("%c", 0x141, "A"), ("%3c", 0x41, "  A"), ("%-3c|", 0x41, "A  |"),
    ("%s", -7, "-7"), ("%+s", 7, "+7"), ("%5s", 42, "   42"),
    # padding fills the whole field (std::right / std::left with setfill)
    ("%5d", 42, "   42"), ("%-5d|", 42, "42   |"), ("%05d", 42, "00042"),
    ("%05d", -5, "000-5"), ("%-05d", 5, "50000"), ("%08x", 255, "000000ff"),
    ("%#06x", 255, "000xff"), ("%2d", 12345, "12345"),
    # precision is for floating point only; * is ignored and takes no argument
    ("%.3d", 5, "5"), ("%*d", 5, "5"), ("%.*d", 5, "5"),
])
def test_integers(fmt, arg, text):
    assert format_printf(fmt, [arg]) == text


@pytest.mark.parametrize("fmt, arg, text", [
    ("%s", "abc", "abc"), ("%-6s|", "abc", "abc   |"), ("%6s", "abc", "   abc"),
    ("%.2s", "abcdef", "abcdef"), ("%06s", "ab", "0000ab"), ("%2s", "abcdef", "abcdef"),
])
def test_strings(fmt, arg, text):
    assert format_printf(fmt, [arg]) == text


def test_literal_percent_forms():
    assert format_printf("100%% %5%|%y|50%", []) == "100% %|%y|50%"
    assert format_printf("%%d", []) == "%d"


def test_format_printf_checks_first():
    with pytest.raises(FormatError, match="not enough arguments"):
        format_printf("%d %d", [1])
    with pytest.raises(FormatError, match="for type 'string': x"):
        format_printf("%x", ["a"])
