"""Built-in report sections (none beyond the core summary yet); the hook is here so the core
uses the same mechanism a third-party plugin would."""
from emu import hookimpl


@hookimpl
def emu_report_sections():
    return []
