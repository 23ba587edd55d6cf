"""Generate the jitted driver loop for one vendor and probe set, write it, import it.

The driver is Python source written to ``<cache>/gen/driver_<hash>.py`` (the hash covers the
source itself, which names the vendor and carries the fingerprint of every source file it
compiles in), imported from there, and compiled by numba with ``cache=True``. ``exec``-built
functions cannot use numba's on-disk cache, a real file with a stable name can
(``reference/numba-engine-spike.md`` §4); a second run with the same choice loads in a fraction
of a second. ``emu run --emit-source`` prints this module.

Probe code is spliced in at ``#@POINT`` marker lines (indentation preserved); with nothing
attached a marker is just a comment.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import textwrap
from pathlib import Path

from emu.model import consts as C

TEMPLATE = '''\
"""emu driver for vendor {vendor!r} (generated: emu rewrites it, do not edit).

Sources fingerprint: {fingerprint}
Vendor module: {vendor_module}
"""
from numba import njit

from emu.model import clock
from emu.model import consts as C
from emu.model import ops as O
from emu.model import probe_call
from emu.model import state as st
from emu.model import vendor_ops as vo
{probe_imports}

@njit(cache=True, _nrt=False)
def run_batch(S, V, ops, first):
    """Run one batch of operations; ``first`` is the stream index of ``ops[0]``.

    Returns how many ran: all of them, unless an attached probe program called ``exit()``.
    """
    n = ops.shape[0]
    for i in range(n):
        op = ops[i]
        kind = op["kind"]
        vm = op["vm"]
        S.sc[st.SC_OP_INDEX] = first + i
        S.cnt_ops[kind] += 1
        #@emu:op
        # the event carries the clock of the context that runs the op: the vCPU for the
        # guest's own operations, the VMM's thread for the rest
        if (kind == C.OP_ACCESS or kind == C.OP_ACCEPT) and op["vcpu"] >= 0:
            op_ctx = O.vcpu_ctx(S, vm, op["vcpu"])
        else:
            op_ctx = S.sc[st.SC_NVCPU] + 2 * vm
        clock.emit(S, C.POINT_OP, op_ctx, vm, op["vcpu"], kind, op["gfn"], op["count"],
                   op["level"], 0, 0)
        if kind == C.OP_ACCESS:
            S.sc[st.SC_GUEST_OPS] += 1
            O.access(S, V, vm, op["vcpu"], op["gfn"], op["flags"])
        elif kind == C.OP_ACCEPT:
            S.sc[st.SC_GUEST_OPS] += 1
            O.accept(S, V, vm, op["vcpu"], op["gfn"], op["level"], op["flags"])
        elif kind == C.OP_CONVERT:
            O.guest_convert(S, V, vm, op["vcpu"], op["gfn"], op["count"],
                            (op["flags"] & C.F_SHARED) != 0)
        elif kind == C.OP_PUNCH:
            O.punch(S, V, vm, op["gfn"], op["count"])
        elif kind == C.OP_BUILD_ADD:
            O.build_add(S, V, vm, op["gfn"], op["count"])
        elif kind == C.OP_FOLIO_SPLIT:
            O.folio_split(S, V, vm, op["gfn"])
        elif kind == C.OP_FOLIO_COLLAPSE:
            O.folio_collapse(S, V, vm, op["gfn"])
        elif kind == C.OP_IDLE:
            O.idle(S, V, vm, op["arg"])
        elif kind == C.OP_RECOVER:
            O.recover(S, V, vm, op["gfn"], op["count"])
        elif kind == C.OP_VCPU_CREATE:
            O.vcpu_create(S, V, vm, op["vcpu"])
        elif kind == C.OP_VM_CREATE:
            O.vm_create(S, V, vm)
        elif kind == C.OP_VM_DESTROY:
            O.vm_destroy(S, V, vm)
        if S.sc[st.SC_RING_N] >= S.sc[st.SC_RING_FLUSH_AT]:
            probe_call.flush(S)
        if S.sc[st.SC_STOP] != 0:
            return i + 1
    return n


@njit(cache=True, _nrt=False)
def host_init(S, V):
    """Let the vendor reserve its static metadata (the host's own memory is already set).

    It runs in a host kernel thread that may sleep (the last context, khugepaged's, stands in
    for it); the session resets every clock afterwards, so boot-time work is not run time.
    """
    vo.host_init(V, S, S.ctx_kind.shape[0] - 1)


@njit(cache=True, _nrt=False)
def vendor_check(S, V):
    """The vendor's own invariants (``--check``): the number of violations."""
    return vo.check(V, S)
'''


def render(vendor: str, vendor_module: str, fingerprint: str, splices: dict[str, str] | None = None,
           probe_imports: str = "") -> str:
    """The driver source with each ``#@POINT`` marker replaced by its spliced probe code."""
    src = TEMPLATE.format(vendor=vendor, vendor_module=vendor_module, fingerprint=fingerprint,
                          probe_imports=probe_imports)
    if not splices:
        return src
    out = []
    for line in src.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("#@") and stripped[2:] in splices:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(textwrap.indent(textwrap.dedent(splices[stripped[2:]]).rstrip() + "\n",
                                       indent))
        else:
            out.append(line)
    return "".join(out)


def load(src: str, cache_dir: Path, kind: str = "driver"):
    """Write ``src`` as ``<cache>/gen/<kind>_<hash>.py`` (atomically) and import it.

    A real file with a stable, content-hashed name is what lets numba cache the jitted
    functions in it (``reference/numba-engine-spike.md`` §4); the probe programs
    (:mod:`emu.probe.compile`) are loaded the same way.
    """
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    name = f"emu_{kind}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    gen = Path(cache_dir) / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    path = gen / f"{kind}_{digest}.py"
    if not path.exists() or path.read_text() != src:
        tmp = gen / f".{kind}_{digest}.{os.getpid()}.tmp"
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return module


assert C.POINT_OP == 0
