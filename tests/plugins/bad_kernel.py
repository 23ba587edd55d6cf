"""A vendor whose kernel takes the wrong parameters, and a kernel for no point at all."""
from collections import namedtuple

import numpy as np

from emu import hookimpl
from emu.records import Vendor

BadState = namedtuple("BadState", ["unused"])


def make_state(layout, options):
    return BadState(unused=np.zeros(1, dtype=np.int64))


def gmem_max_mapping_level(V, gfn):
    return 0


def fly(V, S):
    return 0


@hookimpl
def emu_vendors():
    return [Vendor(name="bad_kernel", summary="broken", state=BadState, make_state=make_state,
                   kernels={"gmem_max_mapping_level": gmem_max_mapping_level, "fly": fly})]
