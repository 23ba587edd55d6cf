"""emu: an emulator of how a hypervisor hands private memory to confidential VMs.

The public Python API is :func:`emu.run` (run a scenario, get a :class:`emu.report.Result`) and
the plugin markers :data:`hookimpl`; see ``emu.hookspecs`` for the plugin contract.
"""
import logging
import sys

import pluggy
import structlog

__version__ = "0.1.0"

if not structlog.is_configured():
    # a library should not print its debug lines into a user's program: unless the program
    # configured structlog itself (the ``emu`` command does, per --verbose), warnings and
    # errors only, on stderr
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )

#: Mark a plugin function as an implementation of an ``emu`` hook.
hookimpl = pluggy.HookimplMarker("emu")


def run(*args, **kwargs):
    """Run a scenario and return its :class:`emu.report.result.Result` (see ``emu.api.run``)."""
    from emu.api import run as _run

    return _run(*args, **kwargs)
