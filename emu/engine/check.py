"""``--check``: the global invariants, verified over the whole state after a batch.

These run in numpy, vectorised, between batches (never per event). The driver narrows a failing
batch down to the first operation that breaks an invariant by replaying it from a snapshot.
"""
from __future__ import annotations

import numpy as np

from emu.model import consts as C
from emu.model import state as st


def violations(S, n_pools_cap=None) -> list[str]:
    """Every broken invariant of the core state, as sentences (empty when all hold)."""
    out: list[str] = []
    nf = S.frame_owner.shape[0]
    counts = np.bincount(S.frame_owner, minlength=C.N_OWNERS)[: C.N_OWNERS]
    if int(S.own_pages.sum()) != nf:
        out.append(f"owner totals add up to {int(S.own_pages.sum())} frames, host has {nf}")
    bad = np.nonzero(counts != S.own_pages)[0]
    for o in bad[:3]:
        out.append(f"owner {C.OWNER_NAMES[o]}: {int(S.own_pages[o])} counted, "
                   f"{int(counts[o])} frames owned")
    free_regions = int(np.count_nonzero(S.region_free == 512))
    if free_regions != int(S.sc[st.SC_FREE_REGIONS]):
        out.append(f"{int(S.sc[st.SC_FREE_REGIONS])} free 2M regions counted, {free_regions} real")
    per_region = (S.frame_owner.reshape(-1, 512) == C.OWN_FREE).sum(axis=1)
    if not np.array_equal(per_region, S.region_free):
        r = int(np.nonzero(per_region != S.region_free)[0][0])
        out.append(f"region {r}: {int(S.region_free[r])} free frames counted, "
                   f"{int(per_region[r])} real")

    g_map = S.g_map
    mapped = g_map != 0
    if np.any(mapped & (S.g_pfn < 0)):
        g = int(np.nonzero(mapped & (S.g_pfn < 0))[0][0])
        out.append(f"gfn index {g} is mapped without backing")
    backed = S.g_pfn >= 0
    if np.any(backed):
        owners = S.frame_owner[S.g_pfn[backed]]
        wrong = (owners != C.OWN_GUEST_PRIVATE) & (owners != C.OWN_GUEST_SHARED)
        if np.any(wrong):
            g = int(np.nonzero(backed)[0][np.nonzero(wrong)[0][0]])
            out.append(f"gfn index {g} is backed by frame {int(S.g_pfn[g])} owned by "
                       f"{C.OWNER_NAMES[int(S.frame_owner[S.g_pfn[g]])]}")
    # no mapping larger than its folio
    huge2 = g_map == C.LVL_2M + 1
    if np.any(huge2):
        regions = np.unique(np.nonzero(huge2)[0] >> 9)
        small = regions[(S.r2_folio[regions] == 0)]
        if small.size:
            out.append(f"2M mapping at gfn index {int(small[0]) << 9} over 4K folios")
        mixed = regions[(S.r2_private[regions] != 0) & (S.r2_private[regions] != 512)]
        if mixed.size:
            out.append(f"2M mapping at gfn index {int(mixed[0]) << 9} spans private and "
                       "shared pages")
    huge1 = g_map == C.LVL_1G + 1
    if np.any(huge1):
        regions = np.unique(np.nonzero(huge1)[0] >> 18)
        small = regions[S.r1_folio[regions] == 0]
        if small.size:
            out.append(f"1G mapping at gfn index {int(small[0]) << 18} over smaller folios")
        p = S.r1_private[regions]
        mixed = regions[(p != 0) & (p != 262144)]
        if mixed.size:
            out.append(f"1G mapping at gfn index {int(mixed[0]) << 18} spans private and "
                       "shared pages")
    # attribute counts agree with the per-page bits
    if S.r2_private.size:
        priv = ((S.g_attr & st.GA_PRIVATE) != 0).reshape(-1, 512).sum(axis=1)
        if not np.array_equal(priv, S.r2_private):
            r = int(np.nonzero(priv != S.r2_private)[0][0])
            out.append(f"2M region {r}: {int(S.r2_private[r])} private pages counted, "
                       f"{int(priv[r])} real")
    # mapping counters agree with the map
    for lvl, span in ((0, 1), (1, 512), (2, 262144)):
        real = int(np.count_nonzero(g_map == lvl + 1)) // span
        if real != int(S.mapped[lvl]):
            out.append(f"{C.LEVEL_NAMES[lvl]} leaves: {int(S.mapped[lvl])} counted, {real} real")
    if S.r2_leaves.size:
        leaves = (g_map == 1).reshape(-1, 512).sum(axis=1)
        if not np.array_equal(leaves, S.r2_leaves):
            r = int(np.nonzero(leaves != S.r2_leaves)[0][0])
            out.append(f"2M region {r}: {int(S.r2_leaves[r])} 4K leaves counted, "
                       f"{int(leaves[r])} real")
        orphan = (leaves > 0) & (S.r2_pt < 0)
        if np.any(orphan):
            out.append(f"4K leaves at gfn index {int(np.nonzero(orphan)[0][0]) << 9} "
                       "without a page table")
    # pools: counts within capacity, cached frames owned by the pool
    for p in range(S.pool_count.shape[0]):
        cnt = S.pool_count[p]
        if np.any(cnt < 0) or np.any(cnt > S.pool_cap[p]):
            out.append(f"pool {p}: a count outside 0..{int(S.pool_cap[p])}")
            continue
        for inst in np.nonzero(cnt)[0][:64]:
            pfns = S.pool_pfns[p, inst, : cnt[inst]]
            if np.any(S.frame_owner[pfns] != S.pool_owner[p]):
                out.append(f"pool {p} instance {int(inst)} holds a frame it does not own")
                break
    if S.sc[st.SC_CHECK_FAILED] >= 0:
        out.append(f"a kernel found a broken invariant at operation {int(S.sc[st.SC_CHECK_FAILED])}")
    return out
