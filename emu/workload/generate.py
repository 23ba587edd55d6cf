"""From a :class:`Scenario` to a lazily generated stream of operations and the :class:`Layout` it needs.

Two passes over the phases, both driven by the same phase generators:

1. **Planning** (inside :func:`build_workload`). The engine sizes its flat arrays from the Layout
   before the first operation runs, so every VM slot must be known up front, including those that
   churn phases create and destroy. Generators run with ``ctx.planning = True``: they make their
   ``create_vm``/``destroy_vm`` calls and report how many operations they would emit
   (``ctx.plan_ops``) but skip producing them, which makes planning cheap. A generator that
   ignores ``ctx.planning`` still works; its output is then produced and counted, just slower.
2. **Generation** (each call of :meth:`Workload.batches`). The same calls happen in the same
   order, so slots come out exactly as planned (checked), and operations are produced chunk by
   chunk: a 1 TiB random-touch workload never exists in memory at once.

Every phase draws from its own ``numpy.random.default_rng([seed, phase_index])``, so changing the
fields of one phase leaves the random draws of the others unchanged, and the same scenario and
seed give a byte-identical stream, however it is cut into batches.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from emu.model.consts import BACKING_NAMES, OP_VCPU_CREATE, OP_VM_CREATE
from emu.model.layout import PAGE_SIZE, PAGES_2M, Layout
from emu.records import PhaseKind
from emu.workload.errors import ScenarioError
from emu.workload.ops import CHUNK, ops, rechunk
from emu.workload.schema import PhaseSpec, Scenario, VmSpec, phase_kind_map
from emu.workload.sizes import format_size


@dataclass(frozen=True)
class VmInstance:
    """A live VM as a generator sees it. ``slot`` is what goes into the ``vm`` field of operations."""

    slot: int
    name: str
    memory_pages: int
    vcpus: int
    backing: int

    @property
    def regions(self) -> int:
        """Number of 2M regions of guest memory."""
        return self.memory_pages // PAGES_2M

    @property
    def memory(self) -> int:
        return self.memory_pages * PAGE_SIZE

    @property
    def backing_name(self) -> str:
        return BACKING_NAMES[self.backing]


@dataclass
class VmState:
    """What generators remember about one live VM across phases.

    ``accepted`` (one bool per 2M region) is the guest's view of which memory it has accepted,
    the unaccepted-memory bitmap Linux keeps, so a ``touch`` after a lazy ``boot`` knows where to
    accept first. ``folio_split`` marks regions whose host folio a ``folio_split`` phase broke up,
    so ``folio_collapse`` can model khugepaged finding them. ``extra`` is for plugin phase kinds.
    """

    vm: VmInstance
    accepted: np.ndarray
    folio_split: np.ndarray
    next_vcpu: int = 0
    extra: dict = field(default_factory=dict)


class _Run:
    """Slot allocation and per-VM state for one pass (planning or generation)."""

    def __init__(self, scenario: Scenario, planning: bool, layout: Layout | None = None):
        self.scenario = scenario
        self.planning = planning
        self.shapes: list[tuple[int, int, int]] = []      # slot -> (memory_pages, vcpus, backing)
        self.names: list[list[str]] = []
        if layout is not None:
            for s in layout.slots:
                self.shapes.append((s.memory_pages, s.vcpus, s.backing))
                self.names.append([])
        self.live: dict[int, VmState] = {}
        self.by_name: dict[str, int] = {}
        self.live_bytes = 0
        self.avail = scenario.host.memory - scenario.host.reserved
        self.start_bytes = sum(v.memory * v.count for v in scenario.vms if v.start)
        self.phase: PhaseSpec | None = None

    def create_vm(self, template: VmSpec, name: str, reuse: int | None) -> int:
        shape = (template.memory_pages, template.vcpus, template.backing_id)
        slot = None
        if reuse is not None and reuse not in self.live and 0 <= reuse < len(self.shapes) \
                and self.shapes[reuse] == shape:
            slot = reuse
        if slot is None:
            slot = next((s for s, sh in enumerate(self.shapes) if sh == shape and s not in self.live), None)
        if slot is None:
            if not self.planning:
                raise RuntimeError(f"VM {name!r} needs a VM slot that planning did not reserve: the phase "
                                   "generator created VMs differently when ctx.planning was set")
            slot = len(self.shapes)
            self.shapes.append(shape)
            self.names.append([])
        vm = VmInstance(slot, name, template.memory_pages, template.vcpus, template.backing_id)
        regions = vm.regions
        self.live[slot] = VmState(vm, np.zeros(regions, dtype=bool), np.zeros(regions, dtype=bool))
        self.by_name[name] = slot
        self.names[slot].append(name)
        self.live_bytes += template.memory
        if self.live_bytes > self.avail:
            place = self.phase.place if self.phase else "host.memory"
            raise ScenarioError(
                place,
                f"VMs live at once need {format_size(self.live_bytes)} (VMs created at start: "
                f"{format_size(self.start_bytes)}) but the host has {format_size(self.avail)} after "
                f"{format_size(self.scenario.host.reserved)} reserved",
                f"at most {format_size(self.avail)} of guest memory live at once",
                source=self.scenario.source)
        return slot

    def destroy_vm(self, slot: int) -> None:
        state = self.live.pop(slot, None)
        if state is None:
            raise ValueError(f"VM slot {slot} is not live")
        self.by_name.pop(state.vm.name, None)
        self.live_bytes -= state.vm.memory


class GenContext:
    """Everything a phase generator may use; one per phase (shared by its repeats).

    Attributes: ``rng`` (this phase's ``numpy.random.Generator``), ``phase`` (the
    :class:`PhaseSpec`), ``scenario``, ``planning`` (see the module doc), ``chunk`` (how many
    operations to put in one yielded array), ``vms`` (the :class:`VmInstance` targets, in order).
    """

    def __init__(self, run: _Run, phase: PhaseSpec, rng: np.random.Generator):
        self._run = run
        self.rng = rng
        self.phase = phase
        self.scenario = run.scenario
        self.planning = run.planning
        self.chunk = CHUNK
        self.planned_ops = 0
        self._churn_seq = 0

    @property
    def vms(self) -> list[VmInstance]:
        """The VMs this phase acts on (its ``vm`` field), skipping any no longer live."""
        out = []
        for name in self.phase.targets:
            slot = self._run.by_name.get(name)
            if slot is not None:
                out.append(self._run.live[slot].vm)
        return out

    def state(self, slot: int) -> VmState:
        """The :class:`VmState` of the live VM in ``slot``."""
        return self._run.live[slot]

    def vm(self, slot: int) -> VmInstance:
        return self._run.live[slot].vm

    def accepted(self, slot: int) -> np.ndarray:
        """The VM's accepted-memory tracker: one bool per 2M region, updated in place by generators."""
        return self._run.live[slot].accepted

    def vcpus(self, slot: int, n: int) -> np.ndarray:
        """vCPU indices for the VM's next ``n`` guest operations: round-robin, continuing where the
        previous guest operations of this VM stopped, so every vCPU gets an equal share of the work
        and their virtual clocks advance together."""
        st = self._run.live[slot]
        v = st.vm.vcpus
        c = st.next_vcpu
        st.next_vcpu = (c + n) % v
        if n <= CHUNK:
            return _vcpu_cycle(v)[c:c + n]
        return ((c + np.arange(n, dtype=np.int64)) % v).astype(np.int32)

    def template(self, name: str) -> VmSpec:
        """The ``[[vm]]`` spec named ``name`` (a template or any VM)."""
        return self.scenario.vm(name)

    def create_vm(self, template: str | VmSpec, name: str | None = None, reuse: int | None = None) -> int:
        """Start a new VM shaped like ``template`` and return its slot.

        The slot is a free one of the same shape (memory, vCPUs, backing): ``reuse`` if it is
        free, else the lowest; a new slot is reserved only while planning. Pass ``reuse`` when
        several VM lifetimes interleave (churn lanes): a lane that always reuses its own slot
        never takes a slot whose destroy operation another lane has not emitted yet. The caller
        emits the ``OP_VM_CREATE``/``OP_VCPU_CREATE`` operations itself.
        """
        spec = template if isinstance(template, VmSpec) else self.template(template)
        if name is None:
            name = f"{spec.name}.p{self.phase.index}.{self._churn_seq}"
            self._churn_seq += 1
        return self._run.create_vm(spec, name, reuse)

    def destroy_vm(self, slot: int) -> None:
        """Forget the VM in ``slot`` (its slot becomes free); the caller emits ``OP_VM_DESTROY``."""
        self._run.destroy_vm(slot)

    def plan_ops(self, n: int) -> None:
        """While planning: count ``n`` operations this generator would produce (for estimates)."""
        self.planned_ops += int(n)

    def fail(self, field_name: str, problem: str, allowed: str | None = None):
        """Raise a :class:`ScenarioError` at ``phase[i].FIELD`` (checks that need the VMs' shapes)."""
        raise ScenarioError(f"{self.phase.place}.{field_name}", problem, allowed, source=self.scenario.source)


@functools.lru_cache(maxsize=64)
def _vcpu_cycle(vcpus: int) -> np.ndarray:
    """0, 1, .., vcpus-1, 0, 1, .. (CHUNK + vcpus long, read-only): slices of it are the vCPU
    columns of guest operations, ten times cheaper than computing a modulo per operation."""
    cycle = (np.arange(CHUNK + vcpus, dtype=np.int64) % vcpus).astype(np.int32)
    cycle.flags.writeable = False
    return cycle


def vm_create_ops(vm: VmInstance) -> np.ndarray:
    """``OP_VM_CREATE`` then ``OP_VCPU_CREATE`` for vCPUs 0..n-1 (what the VMM does before boot)."""
    out = ops(OP_VCPU_CREATE, vm.slot, vcpu=np.arange(-1, vm.vcpus, dtype=np.int32))
    out["kind"][0] = OP_VM_CREATE
    return out


class Workload:
    """A planned workload: the :class:`Layout`, slot names, an estimate, and the operation stream.

    ``vm_names[slot]`` lists the VM instances that used the slot, in order. ``phase_ops[i]`` is
    the estimated operation count of phase i (the prologue of VM creates is ``prologue_ops``);
    ``estimated_ops`` is their sum, exact unless a phase depends on random choices it could not
    make while planning (lazy acceptance inside random touches is then an upper bound).
    """

    def __init__(self, scenario: Scenario, kinds: dict[str, PhaseKind], layout: Layout,
                 vm_names: list[list[str]], prologue_ops: int, phase_ops: list[int]):
        self.scenario = scenario
        self.phase_kinds = kinds
        self.layout = layout
        self.vm_names = vm_names
        self.prologue_ops = prologue_ops
        self.phase_ops = phase_ops
        self.estimated_ops = prologue_ops + sum(phase_ops)

    def batches(self, batch_size: int = 1 << 16) -> Iterator[np.ndarray]:
        """``OP_DTYPE`` arrays of ``batch_size`` operations (the last may be shorter), in order.

        Generated lazily; each call starts over and yields the same bytes. Batches of 64K-256K
        operations are the sweet spot: much larger ones are fresh multi-megabyte allocations
        whose page faults cost more than generating them (measured: 11 ns/op at 64K, 45 at 1M).
        """
        return rechunk(self._stream(), batch_size)

    def to_array(self) -> np.ndarray:
        """The whole stream in one array: for tests and small scenarios only."""
        parts = list(self.batches(1 << 20))
        return np.concatenate(parts) if parts else ops(0, 0, n=0)

    def _stream(self) -> Iterator[np.ndarray]:
        run = _Run(self.scenario, planning=False, layout=self.layout)
        yield from _prologue(run, self.scenario)
        for phase in self.scenario.phases:
            ctx = GenContext(run, phase, _phase_rng(self.scenario, phase))
            run.phase = phase
            yield from _phase_stream(self.phase_kinds[phase.kind], phase, ctx)
        if run.names != self.vm_names:
            raise RuntimeError("VM slots came out differently from planning; a phase generator "
                               "created or destroyed VMs differently when ctx.planning was set")


def _phase_rng(scenario: Scenario, phase: PhaseSpec) -> np.random.Generator:
    return np.random.default_rng([scenario.host.seed, phase.index])


def _prologue(run: _Run, scenario: Scenario) -> Iterator[np.ndarray]:
    for name, spec in scenario.start_instances():
        slot = run.create_vm(spec, name, None)
        yield vm_create_ops(run.live[slot].vm)


def _phase_stream(kind: PhaseKind, phase: PhaseSpec, ctx: GenContext) -> Iterator[np.ndarray]:
    for _ in range(phase.repeat):
        out = kind.generate(dict(phase.fields), ctx)
        if out is not None:
            yield from out


def build_workload(scenario: Scenario,
                   phase_kinds: Mapping[str, PhaseKind] | Iterable[PhaseKind] | None = None) -> Workload:
    """Plan ``scenario``: reserve VM slots, check memory, estimate operations; see the module doc.

    ``phase_kinds`` defaults to the kinds the scenario was parsed with. Raises
    :class:`ScenarioError` for problems only planning can see (churned VMs that do not fit next
    to the others, a conversion larger than its region, ...).
    """
    kinds = phase_kind_map(scenario.phase_kinds if phase_kinds is None else phase_kinds)
    for phase in scenario.phases:
        if phase.kind not in kinds:
            raise ScenarioError(f"{phase.place}.kind", f"{phase.kind!r} is not a phase kind",
                                ", ".join(sorted(kinds)), source=scenario.source)
    run = _Run(scenario, planning=True)
    prologue = sum(len(a) for a in _prologue(run, scenario))
    phase_ops = []
    for phase in scenario.phases:
        ctx = GenContext(run, phase, _phase_rng(scenario, phase))
        run.phase = phase
        produced = sum(len(a) for a in _phase_stream(kinds[phase.kind], phase, ctx))
        phase_ops.append(produced + ctx.planned_ops)
    host = scenario.host
    layout = Layout(host_pages=host.pages, seed=host.seed, huge_folio_chance=host.huge_folio_chance,
                    host_reserved_pages=host.reserved_pages)
    for slot, (pages, vcpus, backing) in enumerate(run.shapes):
        layout.add_slot(run.names[slot][0], pages, vcpus, backing)
    return Workload(scenario, kinds, layout, [list(n) for n in run.names], prologue, phase_ops)
