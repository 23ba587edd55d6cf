"""The one error a scenario can raise, shaped so a person can fix the file without reading code."""
from __future__ import annotations

import difflib
from typing import Iterable


class ScenarioError(ValueError):
    """A scenario that cannot run, with the *place*, the problem and what is allowed.

    ``str(err)`` reads ``"SOURCE: PLACE: PROBLEM; allowed: ALLOWED"``, e.g.
    ``"x.toml: phase[2].pattern: 'zipfian' is not allowed; allowed: sequential, random, zipf"``.
    The parts stay available as attributes so a CLI or an editor integration can point at them.
    Places use the TOML spelling with 0-based array indices: ``host.memory``, ``vm[0].backing``,
    ``phase[2].pattern``; a TOML syntax error uses ``line L, column C``.
    """

    def __init__(self, place: str, problem: str, allowed: str | None = None,
                 source: str | None = None, line: int | None = None, column: int | None = None):
        self.place = place
        self.problem = problem
        self.allowed = allowed
        self.source = source
        self.line = line
        self.column = column
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{self.place}: {self.problem}" if self.place else self.problem
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.source:
            text = f"{self.source}: {text}"
        return text

    def __reduce__(self):
        # exceptions pickle as cls(*self.args); ours takes the parts, not the message
        return (type(self), (self.place, self.problem, self.allowed, self.source, self.line, self.column))

    def with_source(self, source: str | None) -> "ScenarioError":
        """The same error attributed to ``source`` (a file name) if it has none yet."""
        if self.source or not source:
            return self
        return ScenarioError(self.place, self.problem, self.allowed, source, self.line, self.column)


def did_you_mean(word: str, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest allowed spelling of a mistyped ``word``, else ``""``."""
    close = difflib.get_close_matches(str(word), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
