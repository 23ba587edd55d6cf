"""End-to-end runs on the plain vendor: determinism and ``--check``.

The model's rules have their tests in ``tests/model/``, one file per module of ``emu/model/``.
"""
from emu.model import consts as C

SCENARIO = """
[host]
memory = "4GiB"
reserved = "64MiB"
seed = 3
huge_folio_chance = {chance}

[[vm]]
name = "g"
vcpus = 2
memory = "1GiB"
backing = "thp"
"""

TOUCH = """
[[phase]]
kind = "touch"
"""


def test_same_seed_same_bytes_other_seed_differs(run_toml):
    """The same scenario, seed and options give byte-identical JSON (docs/result-json.md)."""
    text = SCENARIO.format(chance=0.5) + """
[[phase]]
kind = "touch"
pattern = "random"
accesses = 20000
"""
    a = run_toml(text).to_json()
    b = run_toml(text).to_json()
    c = run_toml(text, seed=99).to_json()
    assert a == b
    assert a != c


def test_check_reports_the_operation_that_broke_an_invariant(run_toml):
    """--check names the first operation after which an invariant broke (engine/check.py)."""
    def corrupt(session):
        session.S.own_pages[C.OWN_HOST] += 1

    r = run_toml(SCENARIO.format(chance=1.0) + TOUCH, check=True, session_hook=corrupt)
    v = r["check"]["violation"]
    assert v is not None and v["op_index"] == 0
    assert any("owner" in p for p in v["problems"])
