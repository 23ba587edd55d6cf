"""Sizes and durations: what people write in scenarios, and what they get told when it is wrong."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.workload.sizes import format_duration, format_size, parse_duration, parse_size

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize("text, expected", [
    ("16GiB", 16 * GiB), ("16 GiB", 16 * GiB), ("16gib", 16 * GiB), ("16G", 16 * GiB), ("16g", 16 * GiB),
    ("2MiB", 2 * MiB), ("2m", 2 * MiB), ("4KiB", 4 * KiB), ("4k", 4 * KiB), ("1TiB", TiB), ("1t", TiB),
    ("4096", 4096), ("4096B", 4096), ("4096 b", 4096), (4096, 4096), (0, 0), ("0", 0),
    ("1.5GiB", 3 * GiB // 2), (".5 KiB", 512), ("+8M", 8 * MiB),
])
def test_parse_size_accepts(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text, words", [
    ("16GB", "ambiguous"), ("1PiB", "unknown unit"), ("abc", "is not a size"), ("", "is not a size"),
    ("-1", "negative"), (-4096, "negative"), ("0.1KiB", "whole number of bytes"), (1.5, "float"),
    (True, "boolean"), (None, "NoneType"), ("1 2 GiB", "is not a size"),
])
def test_parse_size_rejects_with_what_is_allowed(text, words):
    with pytest.raises(ValueError) as err:
        parse_size(text)
    msg = str(err.value)
    assert words in msg
    assert "KiB" in msg  # every message lists the allowed units


@pytest.mark.parametrize("text, ns", [
    ("10ms", 10_000_000), ("10 ms", 10_000_000), ("20us", 20_000), ("20µs", 20_000), ("5ns", 5),
    ("2s", 2_000_000_000), ("1.5us", 1500), (1000, 1000), ("1000", 1000), ("0", 0),
])
def test_parse_duration_accepts(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["10 min", "ms", "-1ms", "0.5ns", 2.5, False])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError) as err:
        parse_duration(text)
    assert any(u in str(err.value) for u in ("ms", "ns"))


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (16 * GiB, "16 GiB"),
    (3 * GiB // 2, "1.5 GiB"), (TiB, "1 TiB"), (2048 * TiB, "2048 TiB"), (-4 * MiB, "-4 MiB"),
    (64880 * MiB, "63.36 GiB"), (MiB + 1, "1.00 MiB"),
])
def test_format_size(n, text):
    assert format_size(n) == text


def test_format_duration():
    assert format_duration(10_000_000) == "10 ms"
    assert format_duration(1500) == "1.5 us"
    assert format_duration(7) == "7 ns"


@given(st.integers(0, 1023), st.sampled_from([1, KiB, MiB, GiB]))
def test_format_then_parse_round_trips_whole_units(k, unit):
    n = k * unit
    assert parse_size(format_size(n)) == n


@given(st.integers(0, 1 << 30), st.sampled_from([0, 25, 50, 75]))
def test_format_then_parse_round_trips_short_decimals(k, hundredths):
    # 1.5 GiB, 2.25 MiB, 1 TiB, 4096.75 TiB: anything with at most two decimals comes back exactly
    unit = [KiB, MiB, GiB, TiB][k % 4]
    n = (k // 4 % 1000 + 1) * unit + hundredths * unit // 100
    assert parse_size(format_size(n)) == n


@given(st.integers(0, 1 << 53))
def test_format_size_is_close_when_rounded(n):
    number, unit = format_size(n).split()
    scale = {"B": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB, "TiB": TiB}[unit]
    assert abs(float(number) * scale - n) <= 0.005 * scale * (1 + 1e-9)   # float rounding
    assert 1 <= float(number) < 1024 or unit == "TiB" or n == 0


@given(st.integers(0, 1 << 40), st.sampled_from(["", "B", "K", "KiB", "m", "MiB", "g", "GiB"]))
def test_parse_size_of_integer_with_unit(k, unit):
    scale = {"": 1, "b": 1, "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB}[unit.lower()]
    assert parse_size(f"{k}{unit}") == k * scale
