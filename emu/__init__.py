"""emu: an emulator of how a hypervisor hands private memory to confidential VMs.

The public Python API is :func:`emu.run` (run a scenario, get a :class:`emu.report.Result`) and
the plugin markers :data:`hookimpl`; see ``emu.hookspecs`` for the plugin contract.
"""
import pluggy

__version__ = "0.1.0"

#: Mark a plugin function as an implementation of an ``emu`` hook.
hookimpl = pluggy.HookimplMarker("emu")


def run(*args, **kwargs):
    """Run a scenario and return its :class:`emu.report.result.Result` (see ``emu.api.run``)."""
    from emu.api import run as _run

    return _run(*args, **kwargs)
