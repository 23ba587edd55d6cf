"""The result of a run: a plain dictionary with documented, stable keys (``docs/result-json.md``).

It holds only what the run computed in virtual time and counts, so the same scenario, seed and
options give byte-identical JSON. Wall-clock figures (compile and run seconds) live apart, in
``Result.performance``, and reach the JSON only when asked for (``--timing``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from emu import __version__
from emu.model import consts as C
from emu.model import state as st

PAGE = 4096


@dataclass
class Result:
    data: dict
    performance: dict = field(default_factory=dict)
    source: str = ""

    def to_json(self, timing: bool = False) -> str:
        data = dict(self.data)
        if timing:
            data["performance"] = self.performance
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def __getitem__(self, key):
        return self.data[key]


def _levels(arr) -> dict:
    return {C.LEVEL_NAMES[i]: int(arr[i]) for i in range(3)}


def _split_costs(S) -> dict:
    """What the splits of each cause cost in all (``emu.model.state.SPLIT_COST_NAMES``)."""
    out = {}
    for c in range(C.N_CAUSES):
        row = S.split_cost[c]
        if S.cnt_split[c].sum() or row[st.SPLIT_FAILED]:
            out[C.CAUSE_NAMES[c]] = {name: int(row[i])
                                     for i, name in enumerate(st.SPLIT_COST_NAMES)}
    return out


def _by_cause(table) -> dict:
    out = {}
    for c in range(C.N_CAUSES):
        row = {C.LEVEL_NAMES[lvl]: int(table[c, lvl]) for lvl in (1, 2) if table[c, lvl]}
        if row:
            out[C.CAUSE_NAMES[c]] = row
    return out


def owners(pages) -> dict:
    return {C.OWNER_NAMES[o]: int(pages[o]) for o in range(C.N_OWNERS)}


def build(session, *, scenario: str, seed: int, at_end: list[int], after_teardown: list[int] | None,
          ops_total: int, teardown_ops: int, vendor_report: dict,
          mapped_end=None) -> dict:
    """Assemble the result dictionary from a finished session's state."""
    S, t = session.S, session.tables
    kinds = {}
    for c in range(S.ctx_kind.shape[0]):
        k = C.CONTEXT_KIND_NAMES[int(S.ctx_kind[c])]
        row = kinds.setdefault(k, {"contexts": 0, "busy_ns": 0, "clock_max_ns": 0})
        row["contexts"] += 1
        row["busy_ns"] += int(S.ctx_busy[c])
        row["clock_max_ns"] = max(row["clock_max_ns"], int(S.ctx_clock[c]))
    locks = {}
    for i, name in enumerate(t.lock_names):
        locks[name] = {
            "acquisitions": int(S.lock_acq[i].sum()),
            "contended": int(S.lock_contended[i].sum()),
            "wait_ns": int(S.lock_wait[i].sum()),
        }
    pools = {}
    for i, name in enumerate(t.pool_names):
        pools[name] = {
            "scope": t.pool_scopes[i], "capacity": int(S.pool_cap[i]),
            "topups": int(S.pool_topups[i]), "taken": int(S.pool_taken[i]),
            "taken_while_empty": int(S.pool_empty[i]), "peak_pages": int(S.pool_peak[i]),
            "held_pages": int(S.pool_count[i].sum()),
        }
    fw = {}
    for i, name in enumerate(t.fw_names):
        if S.fw_count[i] or S.fw_fail[i]:
            fw[name] = {"count": int(S.fw_count[i]), "ns": int(S.fw_ns[i]),
                        "failed": int(S.fw_fail[i])}
    errors = {C.ERROR_NAMES[k]: int(S.err_count[k]) for k in range(C.N_ERRORS) if S.err_count[k]}
    sites = {}
    for k in range(C.N_ERRORS):
        for s_id in np.nonzero(S.err_site[k])[0]:
            if s_id < len(t.site_names) and k in (C.ERR_ATOMIC_ALLOC, C.ERR_HOST_OOM):
                sites.setdefault(C.ERROR_NAMES[k], {})[t.site_names[s_id]] = \
                    int(S.err_site[k, s_id])
    first = []
    for rec in S.err_rec[: min(int(S.sc[st.SC_ERR_RECORDS]), 20)]:
        kind = int(rec[st.ER_KIND])
        a = int(rec[st.ER_A])
        entry = {"op_index": int(rec[st.ER_OP]), "time_ns": int(rec[st.ER_TIME]),
                 "kind": C.ERROR_NAMES[kind], "a": a, "b": int(rec[st.ER_B]),
                 "context": C.CONTEXT_KIND_NAMES[int(S.ctx_kind[int(rec[st.ER_CTX])])]}
        if kind in (C.ERR_ATOMIC_ALLOC, C.ERR_HOST_OOM) and 0 <= a < len(t.site_names):
            entry["site"] = t.site_names[a]
        first.append(entry)
    counters = {name: int(S.cnt[i]) for i, name in enumerate(st.CNT_NAMES)}
    for i, name in enumerate(t.counter_names):
        counters[name] = int(S.cnt[st.N_CNT + i])
    by_kind = {C.OP_NAMES[k]: int(S.cnt_ops[k]) for k in range(C.N_OPS) if S.cnt_ops[k]}
    memory = {
        "page_size": PAGE,
        "host_pages": int(S.frame_owner.shape[0]),
        "used_peak_pages": int(S.sc[st.SC_USED_PEAK]),
        "peak": owners(S.own_peak),
        "end": owners(at_end),
    }
    if after_teardown is not None:
        memory["after_teardown"] = owners(after_teardown)
    return {
        "emu_version": __version__,
        "scenario": scenario,
        "seed": seed,
        "vendor": {"name": session.vendor.name, "options": session.options},
        "operations": {"total": ops_total, "guest": int(S.sc[st.SC_GUEST_OPS]),
                       "teardown": teardown_ops, "by_kind": by_kind},
        "mappings": {"end": _levels(S.mapped if mapped_end is None else mapped_end), "installed": _levels(S.cnt_map),
                     "zapped": _levels(S.cnt_zap)},
        "splits": {"total": int(S.cnt_split.sum()), "by_cause": _by_cause(S.cnt_split),
                   "failed": int(S.cnt[st.CNT_SPLIT_FAILED]),
                   "cost_by_cause": _split_costs(S)},
        "merges": {"total": int(S.cnt_merge.sum()), "by_cause": _by_cause(S.cnt_merge),
                   "refused": int(S.cnt[st.CNT_MERGE_REFUSED])},
        "firmware": {"calls": int(S.fw_count.sum()), "ns": int(S.fw_ns.sum()),
                     "failed": int(S.fw_fail.sum()), "by_call": fw},
        "accepts": {name: int(S.cnt_accept[i]) for i, name in enumerate(ACCEPT_NAMES)
                    if S.cnt_accept[i]},
        "time": {"virtual_ns": int(S.ctx_clock.max()) if S.ctx_clock.size else 0,
                 "by_context": kinds},
        "locks": locks,
        "pools": pools,
        "memory": memory,
        "counters": counters,
        "errors": {"total": int(S.err_count.sum()), "by_kind": errors, "by_site": sites,
                   "first": first},
        "probes": {"events_lost": int(S.sc[st.SC_RING_LOST])},
        "vendor_report": vendor_report,
        "check": {"enabled": session.check, "batches_checked": session.checked_batches,
                  "violation": session.violation},
    }


ACCEPT_NAMES = ("ok", "exit_split", "already_accepted", "size_mismatch", "not_mapped",
                "unsupported")
