"""Errors in probe scripts, reported like a compiler: ``file:line:col: error: ...`` with a caret.

Every problem the parser or the verifier finds is a :class:`ProbeError` carrying the position
it refers to, so a user sees the offending line with a caret under the spot before anything runs.
"""
from __future__ import annotations

from emu.errors import EmuError


class ProbeError(EmuError):
    """A problem in a probe script, at a 1-based ``line`` and ``col`` of ``source``."""

    def __init__(self, message: str, line: int = 0, col: int = 0, *, source: str = "",
                 filename: str = "<script>", width: int = 1):
        self.message = message
        self.line = line
        self.col = col
        self.source = source
        self.filename = filename
        self.width = max(1, width)
        super().__init__(self.render())

    def located(self, source: str, filename: str) -> "ProbeError":
        """The same error, attached to the script it came from (for the caret line)."""
        return ProbeError(self.message, self.line, self.col, source=source, filename=filename,
                          width=self.width)

    def render(self) -> str:
        if not self.line:
            return f"{self.filename}: error: {self.message}"
        head = f"{self.filename}:{self.line}:{self.col}: error: {self.message}"
        lines = self.source.splitlines()
        if not 0 < self.line <= len(lines):
            return head
        text = lines[self.line - 1].expandtabs(1)
        under = " " * (self.col - 1) + "^" + "~" * (self.width - 1)
        return f"{head}\n{text}\n{under}"
