"""The summary ``emu run`` prints: the per-cause split cost line."""
from emu.report.summary import _split_cost


def test_split_cost_is_averaged_and_totals_what_went_wrong():
    cost = {"firmware_calls": 22, "firmware_ns": 50_000, "firmware_failed": 0, "vcpu_kicks": 0,
            "tlb_flushes": 2, "atomic_allocations": 4, "extra_pages": 8, "ns": 66_000, "failed": 1}
    line = _split_cost("convert", cost, 2)
    assert line == ("per convert split: 11.0 firmware calls, 25 us in firmware, 33 us in all, "
                    "16 KiB more memory, 1.0 TLB flushes, 4 allocations in atomic context in all, "
                    "1 failed in all")


def test_a_cause_whose_splits_all_failed():
    cost = dict.fromkeys(("firmware_calls", "firmware_ns", "firmware_failed", "vcpu_kicks",
                          "tlb_flushes", "atomic_allocations", "extra_pages", "ns"), 0)
    assert _split_cost("punch", {**cost, "failed": 3}, 0) == "punch: 3 failed"
