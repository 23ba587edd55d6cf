"""A hook that raises when called."""
from emu import hookimpl


@hookimpl
def emu_vendors():
    raise RuntimeError("firmware table missing")
