"""``plain``: a non-confidential VM on ordinary EPT, the row every comparison starts from.

It is written as a plugin through the same contract as TDX and SEV-SNP, and fills none of the
vendor points: guest memory is ordinary VMM memory (never private), nothing is handed to
firmware, a huge mapping crossing a zapped range is zapped whole and refaulted, and huge-page
recovery merges page tables back into huge leaves. Its only options shape the mapping sizes.
"""
from collections import namedtuple

import numpy as np

from emu import hookimpl
from emu.model import consts as C
from emu.records import Option, Vendor

__version__ = "0.1.0"

#: The plain vendor keeps no state of its own; numba still needs a distinct type to dispatch on.
PlainState = namedtuple("PlainState", ["unused"])


def make_state(layout, options):
    return PlainState(np.zeros(1, np.int64))


def gmem_max_mapping_level(V, S, vm, gfn, pfn):
    # plain memory is never private, so this only runs if someone marks pages private by hand
    return C.LVL_1G


@hookimpl
def emu_vendors():
    return [
        Vendor(
            name="plain",
            summary="non-confidential VM on ordinary EPT (the baseline)",
            state=PlainState,
            make_state=make_state,
            kernels={"gmem_max_mapping_level": gmem_max_mapping_level},
            options=(
                Option("max_level", "choice", "1G", "largest leaf KVM maps (tdp_mmu huge pages)",
                       ("4K", "2M", "1G")),
            ),
            private_memory=False,
            exact_zap=False,
            external_spt=False,
            max_level=C.LVL_1G,
            knobs=lambda options: {"max_level": C.LEVEL_NAMES.index(options["max_level"])},
        )
    ]
