"""Claims the vendor name ``plain``, which the ``plain`` entry point provides."""
from collections import namedtuple

import numpy as np

from emu import hookimpl
from emu.records import Vendor

PlainAgain = namedtuple("PlainAgain", ["unused"])


def make_state(layout, options):
    return PlainAgain(unused=np.zeros(1, dtype=np.int64))


@hookimpl
def emu_vendors():
    return [Vendor(name="plain", summary="a second plain", state=PlainAgain,
                   make_state=make_state)]
