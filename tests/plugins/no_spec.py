"""A hook implementation with no spec (a typo of ``emu_vendors``)."""
from emu import hookimpl


@hookimpl
def emu_vendor():
    return []
