"""Overrides costs: one entry clashes with site_extras, one has the wrong type."""
from emu import hookimpl


@hookimpl
def emu_cost_overrides(vendor):
    if vendor == "good":
        return {"good_flush": 1, "good_other": 5}
    return {"tlb_flush": "fast"}
