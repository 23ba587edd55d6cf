"""The run's tables: the core's entries followed by the vendor's (locks, pools, sites, ...).

A vendor's entry *k* lands at ``CORE_<TABLE> + k``, the id its kernels use as a constant.
"""
from __future__ import annotations

from dataclasses import dataclass

from emu.builtin_points import CORE_POINTS
from emu.errors import EmuError
from emu.model import consts as C
from emu.model.costs import CORE_COSTS
from emu.records import Cost, ProbePoint, Resource, Vendor

VENDOR_POOL_OWNER = C.OWN_VENDOR_POOL


@dataclass
class Tables:
    lock_names: list[str]
    lock_scopes: list[str]
    lock_sleeps: list[bool]
    pool_names: list[str]
    pool_scopes: list[str]
    pool_caps: list[int]
    pool_mins: list[int]
    pool_owners: list[int]
    site_names: list[str]
    counter_names: list[str]
    fw_names: list[str]
    points: list[ProbePoint]
    costs: list[Cost]
    cost_values: list[int]

    @property
    def cost_names(self) -> list[str]:
        return [c.name for c in self.costs]


def build_tables(vendor: Vendor, overrides: dict[str, int]) -> Tables:
    """Merge core and vendor tables; a vendor cost with a core name replaces the core's."""
    costs = list(CORE_COSTS)
    index = {c.name: i for i, c in enumerate(costs)}
    for c in vendor.costs:
        if c.name in index:
            costs[index[c.name]] = c
        else:
            index[c.name] = len(costs)
            costs.append(c)
    values = [c.ns for c in costs]
    for name, ns in overrides.items():
        if name not in index:
            raise EmuError(f"unknown cost {name!r} for vendor {vendor.name!r}; "
                           f"costs: {', '.join(index)}")
        values[index[name]] = ns

    def pick(items: tuple[Resource, ...], attr):
        return [getattr(r, attr) for r in items]

    for r in (*vendor.locks, *vendor.pools):
        if r.scope not in ("global", "vm", "vcpu"):
            raise EmuError(f"vendor {vendor.name!r}: {r.name!r} has scope {r.scope!r}; "
                           "allowed: global, vm, vcpu")
    return Tables(
        lock_names=[*C.CORE_LOCK_NAMES, *pick(vendor.locks, "name")],
        lock_scopes=[*C.CORE_LOCK_SCOPES, *pick(vendor.locks, "scope")],
        lock_sleeps=[False] * C.CORE_LOCKS + [r.sleeps for r in vendor.locks],
        pool_names=[*C.CORE_POOL_NAMES, *pick(vendor.pools, "name")],
        pool_scopes=[*C.CORE_POOL_SCOPES, *pick(vendor.pools, "scope")],
        pool_caps=[*C.CORE_POOL_CAPACITY, *pick(vendor.pools, "capacity")],
        pool_mins=[*C.CORE_POOL_MIN, *pick(vendor.pools, "minimum")],
        pool_owners=[C.OWN_KVM_POOL] * C.CORE_POOLS + [VENDOR_POOL_OWNER] * len(vendor.pools),
        site_names=[*C.CORE_SITE_NAMES, *pick(vendor.sites, "name")],
        counter_names=list(pick(vendor.counters, "name")),
        fw_names=list(pick(vendor.fw_calls, "name")),
        points=[*CORE_POINTS, *vendor.points],
        costs=costs,
        cost_values=values,
    )


def make_core_state(layout, tables: Tables, *, private_memory: bool, exact_zap: bool,
                    external_spt: bool, vendor_max_level: int,
                    gmem_max_level: int = C.LVL_1G):
    """The core state (``emu.model.state``) for ``layout``, sized and filled from ``tables``:
    what a session runs on, and what the vendors' scripting APIs drive their kernels with."""
    from emu.model import state as st

    return st.make_state(
        layout, n_locks=len(tables.lock_names), n_pools=len(tables.pool_names),
        n_sites=len(tables.site_names), n_counters=len(tables.counter_names),
        n_fw=len(tables.fw_names), n_points=len(tables.points),
        lock_scopes=tables.lock_scopes, lock_sleeps=tables.lock_sleeps,
        pool_caps=tables.pool_caps, pool_mins=tables.pool_mins,
        pool_scopes=tables.pool_scopes, pool_owners=tables.pool_owners,
        costs=tables.cost_values, private_memory=private_memory, exact_zap=exact_zap,
        external_spt=external_spt, vendor_max_level=vendor_max_level,
        gmem_max_level=gmem_max_level)
