"""Typed records that plugins return from their hooks (see ``emu.hookspecs``).

Hooks run once, at setup, and *return* these records; nothing here is called per event. A record
that carries jitted code (a vendor's kernels) carries plain Python functions, which the engine
compiles into the generated driver module for that vendor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

OPTION_TYPES = ("int", "bool", "choice", "size", "float")


@dataclass(frozen=True)
class Option:
    """A typed vendor option, set on the command line as ``--vendor NAME:opt=val``.

    ``type`` is one of ``int``, ``bool``, ``choice`` (one of ``choices``), ``size`` (``16GiB``
    style, stored as bytes) or ``float``.
    """

    name: str
    type: str
    default: Any
    doc: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cost:
    """One entry of a cost table: the virtual nanoseconds a primitive takes.

    ``source`` names where the number comes from (a tag of ``reference/*.md``); an ``estimate``
    is a number no source gives, chosen and explained in ``source``. Users override any entry with
    ``--cost NAME=NS``.
    """

    name: str
    ns: int
    source: str
    estimate: bool = False


@dataclass(frozen=True)
class Resource:
    """A lock, pool, allocation site, counter or firmware call a vendor declares.

    ``scope`` says how many instances exist: ``global`` (one), ``vm`` (one per VM slot) or
    ``vcpu`` (one per vCPU). ``capacity``/``minimum`` apply to pools (a pool is topped up to
    ``capacity`` when it holds fewer than ``minimum`` pages, as ``kvm_mmu_topup_memory_cache``
    does). ``sleeps`` marks a lock as a mutex: holding it does not forbid sleeping, unlike a
    spinlock or ``mmu_lock``.
    """

    name: str
    doc: str = ""
    scope: str = "global"
    capacity: int = 0
    minimum: int = 0
    sleeps: bool = False


@dataclass(frozen=True)
class Field:
    """A typed field of a probe point (``args.NAME`` in a probe script).

    ``type`` is ``int``, ``bool`` or ``ns`` for plain numbers; any other type is *symbolic*: the
    value is still an integer, but probe output prints it by name (as a map key or with ``%s``)
    and scripts may compare it with a name (``args.cause == "punch"``). The core's symbolic
    types (``level``, ``cause``, ``op``, ``owner``, ``site``, ``pool``, ``lock``, ``error``,
    ``accept``) have their tables built in; a plugin's own type brings its names in ``names``:
    a tuple of names (value = index) or of ``(value, name)`` pairs.
    """

    name: str
    type: str = "int"
    doc: str = ""
    names: tuple = ()


@dataclass(frozen=True)
class ProbePoint:
    """A place in the jitted code where probes can attach.

    ``name`` is ``provider:name`` (e.g. ``kvm:split``); the first ``len(fields)`` argument slots
    of an emitted event carry the fields, in order.
    """

    name: str
    doc: str
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Vendor:
    """A confidential-computing vendor (or the plain baseline), as the TDP MMU sees it.

    ``kernels`` maps ``kvm_x86_ops``-like point names (see ``emu.model.vendor_ops``) to plain
    Python functions written in numba's subset; points the vendor leaves out keep the neutral
    default. ``state`` is the ``namedtuple`` class of the vendor's arrays and ``make_state(layout,
    options)`` builds one for a run. The tuples of ``Resource`` extend the core's tables: the
    vendor's entry *k* has the id ``consts.CORE_<TABLE> + k`` in its kernels.
    """

    name: str
    summary: str
    state: type
    make_state: Callable[..., Any]
    kernels: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    options: tuple[Option, ...] = ()
    costs: tuple[Cost, ...] = ()
    locks: tuple[Resource, ...] = ()
    pools: tuple[Resource, ...] = ()
    sites: tuple[Resource, ...] = ()
    counters: tuple[Resource, ...] = ()
    fw_calls: tuple[Resource, ...] = ()
    points: tuple[ProbePoint, ...] = ()
    #: guest memory starts private (guest_memfd) rather than shared VMM memory
    private_memory: bool = False
    #: zapping private memory must be exact: huge mappings crossing a range are split, not zapped
    exact_zap: bool = False
    #: the TDP MMU mirrors its private page tables into firmware-owned ones (TDX's Secure EPT):
    #: the core takes an external page-table page per table and calls ``link_external_spt``
    external_spt: bool = False
    #: the largest leaf level the vendor ever maps (``consts.LVL_*``)
    max_level: int = 2
    #: the largest folio guest_memfd hands out for private memory (``consts.LVL_*``), whatever
    #: the VM's backing: upstream guest_memfd allocates 4K folios only (``reference/snp.md``
    #: §3, ``__kvm_gmem_get_pfn`` sets ``max_order = 0``); out-of-tree series add 2M THP folios
    gmem_max_level: int = 2
    #: human names for generic owners in reports, e.g. ``{"fw_metadata": "PAMT page pairs"}``
    owner_labels: Mapping[str, str] = field(default_factory=dict)
    #: turn a final vendor state into report rows: ``summarize(V, S) -> dict``
    summarize: Callable[..., dict] | None = None
    #: option-dependent core settings: ``knobs(options) -> dict`` with any of ``private_memory``,
    #: ``exact_zap``, ``external_spt``, ``max_level`` and ``gmem_max_level``, overriding the
    #: fields above
    knobs: Callable[..., dict] | None = None


@dataclass(frozen=True)
class PhaseKind:
    """A kind of workload phase: the fields a scenario may give it and its operation generator."""

    name: str
    doc: str
    fields: Mapping[str, Any]
    generate: Callable[..., Any]


@dataclass(frozen=True)
class ReportSection:
    """Rows computed from a finished run: ``render(data) -> [(label, value[, unit])]``
    (see ``emu.hookspecs.emu_report_sections``)."""

    name: str
    title: str
    render: Callable[..., list]
