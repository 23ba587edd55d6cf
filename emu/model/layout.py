"""The shape of one run: the operation record, VM slots, and how global indices are laid out.

A workload is a stream of operation records (``OP_DTYPE``) that refer to VM *slots*. A slot is a
fixed range of the global gfn space and of the global vCPU numbering; VM churn reuses slots after
a VM is destroyed, so a thousand short-lived VMs need only as many slots as live at once.
Keeping every VM in one flat index space lets the jitted kernels use flat arrays (one byte or four
per guest 4K page) instead of per-VM objects, which is what keeps them fast
(``reference/numba-engine-spike.md`` §5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: One operation of the workload. ``vcpu`` is the VM-local vCPU index (-1: none); ``level`` uses
#: ``consts.LVL_*``; ``flags`` uses ``consts.F_*``; ``count`` is a page count for range
#: operations; ``arg`` carries an operation-specific scalar (nanoseconds for ``OP_IDLE``).
OP_DTYPE = np.dtype(
    [
        ("kind", np.uint8),
        ("flags", np.uint8),
        ("level", np.uint8),
        ("pad", np.uint8),
        ("vm", np.int32),
        ("vcpu", np.int32),
        ("gfn", np.int64),
        ("count", np.int64),
        ("arg", np.int64),
    ],
    align=True,
)

PAGE_SIZE = 4096
PAGES_2M = 512
PAGES_1G = 512 * 512


@dataclass(frozen=True)
class VmSlot:
    """One VM slot: the room one live VM occupies in the flat arrays.

    ``memory_pages`` is the guest-physical size in 4K pages; ``gfn_base`` is where the slot's gfn 0
    sits in the global gfn arrays (always 1 GiB aligned, so 2M and 1G regions of a guest never
    straddle two slots); ``vcpu_base`` is its first global vCPU number.
    """

    slot: int
    name: str
    memory_pages: int
    vcpus: int
    backing: int
    gfn_base: int
    vcpu_base: int


@dataclass
class Layout:
    """Everything the engine needs to size its arrays, fixed before the first operation runs."""

    host_pages: int
    slots: list[VmSlot] = field(default_factory=list)
    seed: int = 0
    huge_folio_chance: float = 1.0
    host_reserved_pages: int = 0

    @property
    def total_gfns(self) -> int:
        if not self.slots:
            return 0
        last = self.slots[-1]
        return last.gfn_base + _round_up(last.memory_pages, PAGES_1G)

    @property
    def total_vcpus(self) -> int:
        return sum(s.vcpus for s in self.slots)

    @property
    def max_vcpus_per_vm(self) -> int:
        return max((s.vcpus for s in self.slots), default=0)

    def add_slot(self, name: str, memory_pages: int, vcpus: int, backing: int) -> VmSlot:
        """Append a slot after the existing ones and return it."""
        gfn_base = self.total_gfns
        vcpu_base = self.total_vcpus
        slot = VmSlot(len(self.slots), name, memory_pages, vcpus, backing, gfn_base, vcpu_base)
        self.slots.append(slot)
        return slot


def _round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def make_ops(n: int) -> np.ndarray:
    """An empty batch of ``n`` operations (all ``OP_NOP``)."""
    return np.zeros(n, dtype=OP_DTYPE)
