"""A small valid vendor: one numpy array of state, one kernel capping private mappings at 2M."""
from collections import namedtuple

import numpy as np

from emu import hookimpl
from emu.model import consts
from emu.records import Cost, ProbePoint, Vendor

__version__ = "1.2.3"

GoodState = namedtuple("GoodState", ["touched"])


def make_state(layout, options):
    return GoodState(touched=np.zeros(1, dtype=np.int64))


def gmem_max_mapping_level(V, S, vm, gfn, pfn):
    return consts.LVL_2M


@hookimpl
def emu_vendors():
    return [Vendor(name="good", summary="a test vendor that maps private memory at 2M at most",
                   state=GoodState, make_state=make_state,
                   kernels={"gmem_max_mapping_level": gmem_max_mapping_level},
                   costs=(Cost("good_flush", 100, "estimate: test fixture", estimate=True),),
                   points=(ProbePoint("good:flush", "The good firmware flushed."),))]
