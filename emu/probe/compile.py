"""From script text to a loaded, jitted probe program: parse, verify, lay out, generate, load.

Several scripts (``-e`` and each ``--probe-file``) form one program, as if concatenated: they
share maps. Errors still name the file and line they come from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from emu import jit
from emu.probe import codegen
from emu.probe.errors import ProbeError
from emu.probe.parser import parse
from emu.probe.points import NameTables, PointCatalog, core_name_tables
from emu.probe.verifier import Checked, verify

#: the sources compiled into every probe program (their fingerprint names the generated file)
RUNTIME_SOURCES = tuple(Path(__file__).with_name(n) for n in ("runtime.py", "buckets.py",
                                                               "codegen.py"))


@dataclass
class Script:
    """One piece of a program: its text and where it came from (for error messages)."""

    text: str
    filename: str = "<script>"


@dataclass
class Program:
    """A compiled probe program, ready to attach to a session."""

    checked: Checked
    layout: codegen.DataLayout
    source: str
    module: object
    compile_s: float

    @property
    def names(self) -> NameTables:
        return self.checked.catalog.names


def catalog_for(points, known_names, tables=None, layout=None, extra_tables=None) -> PointCatalog:
    """The points a run's program attaches to, with the names its symbolic values print as.

    ``points`` are the run's points in id order, ``known_names`` every point name any loaded
    plugin declares; ``tables`` (:class:`emu.engine.tables.Tables`) names sites, pools and
    locks; ``layout`` names the execution contexts.
    """
    names = NameTables(core_name_tables())
    if tables is not None:
        names.tables["site"] = dict(enumerate(tables.site_names))
        names.tables["pool"] = dict(enumerate(tables.pool_names))
        names.tables["lock"] = dict(enumerate(tables.lock_names))
    if layout is not None:
        names.tables["ctx"] = dict(enumerate(context_names(layout)))
    for table, values in (extra_tables or {}).items():
        names.tables[table] = dict(values)
    for p in points:
        for f in p.fields:
            if getattr(f, "names", None):
                names.tables.setdefault(f.type, dict(_as_mapping(f.names)))
    return PointCatalog(list(points), set(known_names), names)


def _as_mapping(names):
    """A field's ``names``: a mapping, ``(value, name)`` pairs, or names indexed by value."""
    if hasattr(names, "items"):
        return names.items()
    if all(isinstance(n, tuple) for n in names):
        return names
    return enumerate(names)


def context_names(layout) -> list[str]:
    """Names of the execution contexts, in the kernels' context order (``emu.model.state``)."""
    out = []
    for s in layout.slots:
        out.extend(f"{s.name}/vcpu{i}" for i in range(s.vcpus))
    for s in layout.slots:
        out.extend((f"{s.name}/vmm", f"{s.name}/mmu_notifier"))
    return out + ["rcu_callback", "khugepaged"]


def parse_scripts(scripts: list[Script]):
    """Parse the scripts as one program; errors point into the script they come from."""
    if not scripts:
        raise ProbeError("no probe script given")
    text = ""
    spans = []
    for s in scripts:
        first = text.count("\n") + 1
        body = s.text if s.text.endswith("\n") else s.text + "\n"
        spans.append((first, first + body.count("\n"), s))
        text += body
    try:
        program = parse(text, scripts[0].filename if len(scripts) == 1 else "<scripts>")
    except ProbeError as e:
        raise _relocate(e, spans) from None
    return program, spans


def _relocate(e: ProbeError, spans) -> ProbeError:
    for first, end, s in spans:
        if first <= e.line < end or (e.line == end and s is spans[-1][2]):
            return ProbeError(e.message, e.line - first + 1, e.col, source=s.text,
                              filename=s.filename, width=e.width)
    return e


def check_scripts(scripts: list[Script], catalog: PointCatalog) -> Checked:
    program, spans = parse_scripts(scripts)
    try:
        return verify(program, catalog)
    except ProbeError as e:
        raise _relocate(e, spans) from None


def compile_program(scripts: list[Script], catalog: PointCatalog, cache_dir: Path | None = None,
                    out_words: int = codegen.OUT_WORDS) -> Program:
    """Check, generate and load ``scripts`` for ``catalog``'s points (cached by content)."""
    t0 = time.perf_counter()
    checked = check_scripts(scripts, catalog)
    layout = codegen.DataLayout.of(checked, out_words)
    fingerprint = jit.fingerprint(RUNTIME_SOURCES)
    src = codegen.generate(checked, layout, fingerprint)
    root = Path(cache_dir) if cache_dir else (jit.active_cache_dir() or
                                              jit.default_cache_root() / "probes")
    module = _load(src, root)
    return Program(checked, layout, src, module, time.perf_counter() - t0)


def _load(src: str, cache_dir: Path):
    """Write the program under its content hash and import it; numba caches it."""
    from emu.engine.codegen import load

    if jit.active_cache_dir() is None:
        from numba.core import config
        config.CACHE_DIR = str(cache_dir)
    return load(src, cache_dir, kind="probe")
