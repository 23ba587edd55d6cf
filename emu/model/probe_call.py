"""Handing the probe ring to an attached probe program, from inside jitted code.

A probe program (``emu.probe``) is compiled on its own, in well under a second, into a C-callable
*consumer* ``int64 consume(ring_address, n_events, data_address)`` that runs the program's
actions over the events and returns non-zero once the program called ``exit()``. The kernels
cannot import it: they are compiled once per source fingerprint (minutes for a vendor) and a
new program must not recompile them. So the state carries the consumer's address
(``SC_PROBE_FN``) and :func:`flush` calls it through a pointer: one indirect call per ring-full
of events, never per event. With nothing attached the address is 0 and the ring keeps the
older behaviour (events wait for the session to drain them, and a full ring counts losses).
"""
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from emu.jit import kernel
from emu.model import state as st


@intrinsic
def call_consumer(typingctx, fn, ring, n, data):
    """Call the C function at address ``fn`` as ``int64 (*)(int64, int64, int64)``."""
    sig = types.int64(types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i64, i64, i64])
        ptr = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(ptr, list(args[1:]))

    return sig, codegen


@kernel(cold=True)
def flush(S):
    """Run the attached program over the ring's events and empty it; note an ``exit()``."""
    n = S.sc[st.SC_RING_N]
    if n == 0:
        return
    S.sc[st.SC_RING_N] = 0
    if call_consumer(S.sc[st.SC_PROBE_FN], S.sc[st.SC_PROBE_RING], n, S.sc[st.SC_PROBE_DATA]):
        S.sc[st.SC_STOP] = 1
