"""Results: the stable dictionary a run produces, and the text people read."""
from emu.report.result import Result

__all__ = ["Result"]
