"""A hook implementation asking for an argument the spec does not pass."""
from emu import hookimpl


@hookimpl
def emu_vendors(config):
    return []
