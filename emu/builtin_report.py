"""The core's report sections (workload, splits, firmware, memory, locks, errors), registered
through the same hook a third-party plugin uses to add its own rows."""
from emu import hookimpl
from emu.report.sections import core_sections


@hookimpl
def emu_report_sections():
    return core_sections()
