"""The ``snp`` rows of a run's report: the RMP's size and entries, splits and merges by cause,
the direct map, outcomes of every call. Plain numpy over the final state, once per run."""
from __future__ import annotations

import numpy as np

from emu.model import consts as C

from emu_snp import abi
from emu_snp import state as T

PAGE = 4096


def entries(V) -> dict:
    """Assigned RMP entries now: 2M entries, 4K entries of guests, and by page state."""
    f = V.rmp_flags
    heads = f[::512]
    two_m = int(np.count_nonzero((heads & (abi.F_ASSIGNED | abi.F_2M))
                                 == (abi.F_ASSIGNED | abi.F_2M)))
    in_2m = np.repeat((heads & (abi.F_ASSIGNED | abi.F_2M)) == (abi.F_ASSIGNED | abi.F_2M), 512)
    guest_4k = int(np.count_nonzero(~in_2m & ((f & abi.F_ASSIGNED) != 0) & (V.rmp_asid != 0)))
    states = {}
    assigned = np.flatnonzero((f & abi.F_ASSIGNED) != 0)
    # entries 1..511 of a 2M page are part of it, not pages of their own
    own = assigned[~in_2m[assigned] | ((assigned & 511) == 0)]
    keys = (f[own].astype(np.int64) & 0x1F) | (np.minimum(V.rmp_asid[own], 1).astype(np.int64)
                                               << 8)
    for key, n in zip(*np.unique(keys, return_counts=True)):
        name = abi.STATE_NAMES[abi.page_state(int(key) & 0xFF, int(key) >> 8)]
        states[name] = states.get(name, 0) + int(n)
    return {"2M": two_m, "4K_guest": guest_4k, "by_state": states}


def summarize(V, S) -> dict:
    """Vendor rows for the report."""
    host_pages = int(S.own_pages.sum())
    rmp_bytes = int(V.stat[T.ST_RMP_BYTES])
    failed = {}
    for call, name in enumerate(abi.CALL_NAMES):
        for slot in np.flatnonzero(V.fail[call]):
            failed[f"{name} {abi.slot_name(call, int(slot))}"] = int(V.fail[call, slot])
    split = {C.CAUSE_NAMES[c]: int(n) for c, n in enumerate(V.split) if n}
    merge = {T.MERGE_NAMES[c]: int(n) for c, n in enumerate(V.merge) if n}
    dm = {}
    for c, name in enumerate(T.DM_CAUSE_NAMES):
        row = {lvl: int(V.dm_split[c, i]) for i, lvl in enumerate(("2M", "1G"))
               if V.dm_split[c, i]}
        if row:
            dm[name] = row
    return {
        "gmem": "thp" if V.opt[T.OPT_THP] else "upstream",
        "rmp_bytes": rmp_bytes,
        "rmp_percent": round(100.0 * rmp_bytes / (host_pages * PAGE), 4) if host_pages else 0.0,
        "rmp_reserved_pages": int(V.stat[T.ST_RMP_RESERVED]),
        "rmp_entries": entries(V),
        "rmp_guest_entries_peak": {"2M": int(V.stat[T.ST_2M_PEAK]),
                                   "4K": int(V.stat[T.ST_4K_PEAK])},
        "rmp_splits": int(V.split.sum()),
        "rmp_splits_by_cause": split,
        "rmp_merges": int(V.merge.sum()),
        "rmp_merges_by_cause": merge,
        "direct_map_splits_by_cause": dm,
        "direct_map_pt_pages": int(V.stat[T.ST_DM_PT_PAGES]),
        "direct_map_split_regions": int(np.count_nonzero(V.dm2m == T.DM_SPLIT)),
        "pages_leaked": int(V.stat[T.ST_LEAKED]),
        "outcomes": failed,
    }
