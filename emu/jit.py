"""How emu compiles: one decorator for every per-event kernel, and an on-disk cache keyed by source.

Kernels are ``numba.njit(_nrt=False, forceinline=True)``:

* ``_nrt=False``: they take the state arrays as arguments and never allocate, so numba needs no
  reference counting in them. With reference counting on, every array argument costs atomic
  increments per call and a kernel with branches ran 5x slower
  (``reference/numba-engine-spike.md`` §0). ``_nrt`` is a private numba option, which is why
  ``pyproject.toml`` pins numba's major version range.
* ``forceinline=True`` (LLVM ``alwaysinline``): numba passes a namedtuple argument as its
  flattened fields, so a call with the core state (~70 arrays, ~480 machine words) stores and
  reloads every word. Measured on the boot benchmark (16.8M guest operations, ``plain``): 117
  ns per operation with ordinary calls, 18.5 ns with the per-operation path inlined. The price
  is compile time, which is why large bodies off that path are ``cold`` (real calls) and why
  integer argument types are widened (one signature per kernel): ``plain`` compiles in about
  a minute, ``tdx`` in four to five.

Numba's on-disk cache does not notice when a function's *callee* in another file changes
(``numba-engine-spike.md`` §4, the stale-cache trap). emu therefore keys the whole cache
directory by a fingerprint of every source file that jitted code comes from (emu itself and the
loaded plugins) plus the numba and Python versions: edit any of them and the next run compiles
into a fresh directory. Kernels are created without a cache and get one when
:func:`activate_cache` points numba at that directory, which happens before anything compiles.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numba
from numba.core import config, types

_KERNELS: list = []
_active_dir: Path | None = None

#: how many fingerprinted cache directories to keep beside the active one
KEEP_CACHES = 4


def kernel(fn=None, *, cold: bool = False):
    """Compile ``fn`` as a per-event kernel (no reference counting, cached once activated).

    Kernels are only ever called from other jitted code, so they get no CPython or C wrapper:
    building those wrappers was a third of cold compile time. Every kernel is inlined into its
    callers by LLVM (see the module docstring for why). numba's own IR-level inlining
    (``inline="always"``) is not used: it silently dropped the body of a small kernel with a
    branch that followed a vendor call in the same block (numba 0.68; it left ``mmu_lock`` held
    after conversions).

    ``cold=True`` keeps a kernel a real call: for large bodies off the per-event path (VM
    lifecycle, firmware error paths, splits, teardown) the call costs less than compiling a
    copy of the body into every caller, which made compile time grow with the product of call
    sites and callees.
    """
    if fn is None:
        return lambda f: kernel(f, cold=cold)
    opts = {"_nrt": False, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}
    # set either way: numba lets a callee inherit forceinline from its caller otherwise
    opts["forceinline"] = not cold
    dispatcher = _widen_integers(numba.njit(**opts)(fn))
    _KERNELS.append(dispatcher)
    if _active_dir is not None and hasattr(dispatcher, "enable_caching"):
        dispatcher.enable_caching()
    return dispatcher


def _widen_integers(dispatcher):
    """Compile a kernel once for int64 wherever callers pass any integer type.

    numba specialises a function for every combination of argument types it is called with:
    a kernel called with an ``int32`` array element in one place and an ``int64`` in another
    compiled twice, and the vendor kernels, called from many places, compiled two to three
    times each. Mapping every integer argument type to int64 when a call is typed makes numba
    pick one signature and cast the arguments at the call site.
    """
    if not hasattr(dispatcher, "get_call_template"):      # NUMBA_DISABLE_JIT=1
        return dispatcher
    typed = dispatcher.get_call_template

    def get_call_template(args, kws):
        args = tuple(types.int64 if isinstance(a, types.Integer) else a for a in args)
        return typed(args, kws)

    dispatcher.get_call_template = get_call_template
    return dispatcher


def default_cache_root() -> Path:
    """``$EMU_CACHE_DIR``, else ``$XDG_CACHE_HOME/emu``, else ``~/.cache/emu``."""
    env = os.environ.get("EMU_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "emu"


def fingerprint(sources) -> str:
    """A short hash of the given files and directories (``*.py`` below them) and the toolchain."""
    h = hashlib.sha256()
    h.update(f"numba {numba.__version__} python {sys.version_info[:3]}".encode())
    files = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.py")))
        elif p.is_file():
            files.append(p)
    for f in sorted(set(files)):
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def activate_cache(root: Path, sources) -> Path:
    """Point numba's cache at ``root/<fingerprint of sources>`` and enable it on every kernel.

    Returns the directory. Calling it again with the same fingerprint does nothing; a different
    fingerprint (a plugin loaded later, a source edited) switches directory.
    """
    global _active_dir
    root = Path(root)
    target = root / fingerprint(sources)
    if _active_dir == target:
        return target
    target.mkdir(parents=True, exist_ok=True)
    config.CACHE_DIR = str(target)
    _active_dir = target
    for dispatcher in _KERNELS:
        if hasattr(dispatcher, "enable_caching"):   # absent under NUMBA_DISABLE_JIT=1
            dispatcher.enable_caching()
    _prune(root, keep=target)
    return target


def active_cache_dir() -> Path | None:
    return _active_dir


def _prune(root: Path, keep: Path) -> None:
    """Remove the oldest fingerprint directories so stale caches do not pile up."""
    try:
        dirs = [d for d in root.iterdir() if d.is_dir() and d != keep and len(d.name) == 16]
    except OSError:
        return
    dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in dirs[KEEP_CACHES:]:
        shutil.rmtree(d, ignore_errors=True)
