"""Scenario files: TOML in, a validated :class:`Scenario` out, or a :class:`ScenarioError` that names the place.

A scenario says what host runs which VMs, then what the guests and the host do, as a list of
phases. Everything that can be checked before generating a single operation is checked here,
because a mistake found after a minute of emulation is a minute lost; what depends on generation
(VMs that churn phases keep alive at once) is checked by :func:`emu.workload.build_workload`.

Shape (see ``examples/*.toml``)::

    [host]                  memory (required), huge_folio_chance, seed, reserved
    [[vm]]                  name, memory (required), vcpus, backing, count, start
    [[phase]]               kind (required), vm, repeat, then the fields of that kind
    [compare]               vendors: the columns of ``emu compare SCENARIO`` without --vendor
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from emu.model.consts import BACKING_NAMES
from emu.model.layout import PAGE_SIZE
from emu.records import PhaseKind
from emu.workload.errors import ScenarioError, did_you_mean
from emu.workload.fields import RESERVED_PHASE_KEYS, FieldSpec, check_fields
from emu.workload.sizes import format_size

MiB = 1 << 20
GiB = 1 << 30
TOP_LEVEL_KEYS = ("host", "vm", "phase", "compare")

HOST_FIELDS: dict[str, FieldSpec] = {
    "memory": FieldSpec("size", "Host physical memory. Every 4K frame of it has an owner in the model.",
                        multiple_of=2 * MiB),
    "huge_folio_chance": FieldSpec(
        "float", "Chance that a THP allocation gets a 2M folio rather than 4K ones: below 1.0 models "
        "a fragmented host where the page allocator cannot always find an order-9 block.",
        default=1.0, min=0.0, max=1.0),
    "seed": FieldSpec("int", "Seed of every random choice (phase generators and the host model): the same "
                      "seed gives the same operations and the same result.", default=0, min=0, max=2**63 - 1),
    "reserved": FieldSpec("size", "Host memory the host kernel itself uses, unavailable to guests and to "
                          "KVM. Default: 1% of memory, rounded up to 2 MiB.", default=None, min=0),
}

VM_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("str", "Unique name; phases refer to the VM by it."),
    "vcpus": FieldSpec("int", "Number of vCPUs. Guest operations rotate over them, and each has its own "
                       "memory cache and clock, so more vCPUs means more concurrency on mmu_lock.",
                       default=1, min=1, max=1024),
    "memory": FieldSpec("size", "Guest memory (guest-physical size).", multiple_of=2 * MiB),
    "backing": FieldSpec("choice", "What backs guest memory on the host: 4K pages, transparent huge pages "
                         "(2M folios when the host can get them), or hugetlbfs 2M / 1G pages.",
                         default="thp", choices=BACKING_NAMES),
    "count": FieldSpec("int", "Number of identical VMs; they are named NAME-0 .. NAME-{count-1}.",
                       default=1, min=1, max=4096),
    "start": FieldSpec("bool", "Create the VM at the start of the run. false makes it a template that only "
                       "churn phases instantiate.", default=True),
}

PHASE_COMMON: dict[str, FieldSpec] = {
    "kind": FieldSpec("str", "Which phase kind (emu lists them)."),
    "vm": FieldSpec("str", "The VMs the phase acts on: a name (a counted group means all its VMs), a list "
                    "of names, or '*' (every VM created at start).", default="*"),
    "repeat": FieldSpec("int", "Run the phase this many times in a row (its random choices continue).",
                        default=1, min=1, max=1_000_000),
}

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class HostSpec:
    """The ``[host]`` table, parsed: sizes in bytes."""

    memory: int
    huge_folio_chance: float
    seed: int
    reserved: int

    @property
    def pages(self) -> int:
        return self.memory // PAGE_SIZE

    @property
    def reserved_pages(self) -> int:
        return self.reserved // PAGE_SIZE


@dataclass(frozen=True)
class VmSpec:
    """One ``[[vm]]`` table (``index`` is its position); ``count`` > 1 stands for several instances."""

    index: int
    name: str
    vcpus: int
    memory: int
    backing: str
    count: int
    start: bool

    @property
    def memory_pages(self) -> int:
        return self.memory // PAGE_SIZE

    @property
    def backing_id(self) -> int:
        """``consts.BACK_*``."""
        return BACKING_NAMES.index(self.backing)

    @property
    def instance_names(self) -> tuple[str, ...]:
        if self.count == 1:
            return (self.name,)
        return tuple(f"{self.name}-{i}" for i in range(self.count))


@dataclass(frozen=True)
class PhaseSpec:
    """One ``[[phase]]``: ``targets`` are the resolved instance names, ``fields`` the parsed values
    of its kind's fields (defaults filled in; ``None`` where the default is per-VM). Generators
    get a copy of ``fields``, so treat it as read-only. Plain dicts (not mapping proxies) keep a
    Scenario picklable for runs in worker processes."""

    index: int
    kind: str
    targets: tuple[str, ...]
    fields: Mapping[str, Any]
    repeat: int = 1

    @property
    def place(self) -> str:
        return f"phase[{self.index}]"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``description`` is the comment block at the top of the file."""

    source: str
    host: HostSpec
    vms: tuple[VmSpec, ...]
    phases: tuple[PhaseSpec, ...]
    description: str = ""
    phase_kinds: Mapping[str, PhaseKind] = field(default_factory=dict, compare=False, repr=False)
    #: ``[compare] vendors``: the columns ``emu compare SCENARIO`` shows without ``--vendor``
    compare_vendors: tuple[str, ...] = ()

    def vm(self, name: str) -> VmSpec:
        """The ``[[vm]]`` a group or instance name belongs to (``KeyError`` if none)."""
        for spec in self.vms:
            if name == spec.name or name in spec.instance_names:
                return spec
        raise KeyError(name)

    def start_instances(self) -> list[tuple[str, VmSpec]]:
        """``(instance name, spec)`` of every VM created at the start, in file order."""
        return [(n, v) for v in self.vms if v.start for n in v.instance_names]


# --- phase kinds --------------------------------------------------------------------------------

def phase_kind_map(kinds: Mapping[str, PhaseKind] | Iterable[PhaseKind]) -> dict[str, PhaseKind]:
    """``{name: kind}`` from a mapping or an iterable of :class:`PhaseKind`, with fields checked.

    Field specs given as dicts become :class:`FieldSpec`; a bad spec (unknown type, a default
    that does not parse, a missing doc) raises ``ValueError`` naming the kind and field.
    """
    items = kinds.values() if isinstance(kinds, Mapping) else kinds
    out: dict[str, PhaseKind] = {}
    for kind in items:
        if kind.name in out and out[kind.name] is not kind:
            raise ValueError(f"phase kind {kind.name!r} is declared twice")
        fields = check_fields(f"phase kind {kind.name!r}", kind.fields, RESERVED_PHASE_KEYS)
        if any(FieldSpec.coerce(s) is not s for s in kind.fields.values()):
            kind = PhaseKind(kind.name, kind.doc, fields, kind.generate)
        out[kind.name] = kind
    return out


# --- loading ------------------------------------------------------------------------------------

def load_scenario(path: str | Path, phase_kinds: Mapping[str, PhaseKind] | Iterable[PhaseKind]) -> Scenario:
    """Read and validate the TOML scenario at ``path`` (errors name the file)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError("", f"cannot read the scenario: {e.strerror or e}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_POS.search(msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        problem = _TOML_POS.sub("", msg).strip()
        place = f"line {line}, column {col}" if m else "end of file"
        raise ScenarioError(place, f"TOML syntax error: {problem}", source=source,
                            line=line, column=col) from None
    return parse_scenario(data, phase_kinds, source=source, description=leading_comment(text))


def leading_comment(text: str) -> str:
    """The comment block at the top of a TOML file, without the ``#`` marks."""
    lines = []
    for raw in text.splitlines():
        s = raw.strip()
        if not s and not lines:
            continue
        if not s.startswith("#"):
            break
        lines.append(s[1:][1:] if s[1:].startswith(" ") else s[1:])
    return "\n".join(lines).strip()


def parse_scenario(data: Mapping[str, Any], phase_kinds: Mapping[str, PhaseKind] | Iterable[PhaseKind],
                   source: str = "<scenario>", description: str = "") -> Scenario:
    """Validate a scenario given as the dict ``tomllib`` produces; see the module doc for its shape."""
    kinds = phase_kind_map(phase_kinds)
    try:
        return _parse(data, kinds, source, description)
    except ScenarioError as e:
        raise e.with_source(source) from None


def _parse(data: Mapping[str, Any], kinds: dict[str, PhaseKind], source: str, description: str) -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError("", f"a scenario is a table, not {type(data).__name__}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ScenarioError(str(key), f"unknown table{did_you_mean(key, TOP_LEVEL_KEYS)}",
                                "[host], [[vm]], [[phase]], [compare]")
    if "host" not in data:
        raise ScenarioError("host", "missing [host] table (host.memory at least)", "[host] with memory = \"...\"")
    host = _parse_host(_table(data["host"], "host"))
    vms = tuple(_parse_vm(t, i) for i, t in enumerate(_array(data.get("vm", []), "vm")))
    _check_vm_names(vms)
    _check_host_fits(host, vms)
    phases = tuple(_parse_phase(t, i, kinds, vms)
                   for i, t in enumerate(_array(data.get("phase", []), "phase")))
    compare = _parse_compare(_table(data.get("compare", {}), "compare"))
    return Scenario(source, host, vms, phases, description, dict(kinds), compare)


def _parse_compare(table: Mapping[str, Any]) -> tuple[str, ...]:
    """``[compare] vendors = ["tdx:policy=lazy", "snp:gmem=thp", ...]``."""
    for key in table:
        if key != "vendors":
            raise ScenarioError(f"compare.{key}", f"unknown field{did_you_mean(key, ['vendors'])}",
                                "vendors")
    vendors = table.get("vendors", [])
    if not isinstance(vendors, list) or not all(isinstance(v, str) and v for v in vendors):
        raise ScenarioError("compare.vendors", "expected a list of vendor specs",
                            '["NAME[:opt=val,...]", ...], e.g. ["tdx", "snp:gmem=thp"]')
    if "vendors" in table and not vendors or len(set(vendors)) != len(vendors):
        raise ScenarioError("compare.vendors", "empty, or a vendor given twice",
                            "distinct vendor specs")
    return tuple(vendors)


def _table(value: Any, place: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(place, f"expected a table, got {type(value).__name__}",
                            f"[{place}] with key = value lines")
    return value


def _array(value: Any, place: str) -> list:
    if isinstance(value, Mapping):
        raise ScenarioError(place, f"expected an array of tables; write [[{place}]], not [{place}]",
                            f"[[{place}]] blocks")
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ScenarioError(place, "expected an array of tables", f"[[{place}]] blocks")
    return value


def _fields(table: Mapping[str, Any], specs: Mapping[str, FieldSpec], place: str,
            skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Parse ``table`` against ``specs``: unknown keys, missing required ones, types, defaults."""
    for key in table:
        if key not in specs and key not in skip:
            allowed = sorted(set(specs) | set(skip))
            raise ScenarioError(f"{place}.{key}", f"unknown field{did_you_mean(key, allowed)}",
                                ", ".join(allowed))
    out = {}
    for name, spec in specs.items():
        where = f"{place}.{name}"
        if name in table:
            out[name] = spec.parse(table[name], where)
        elif spec.required:
            raise ScenarioError(where, "missing required field", spec.allowed())
        else:
            out[name] = spec.default_value(where)
    return out


def _parse_host(table: Mapping[str, Any]) -> HostSpec:
    v = _fields(table, HOST_FIELDS, "host")
    memory = v["memory"]
    reserved = v["reserved"]
    if reserved is None:
        reserved = default_reserved(memory)
    if reserved >= memory:
        raise ScenarioError("host.reserved", f"{format_size(reserved)} leaves no memory for guests",
                            f"less than host.memory ({format_size(memory)})")
    return HostSpec(memory, v["huge_folio_chance"], v["seed"], reserved)


def default_reserved(memory: int) -> int:
    """1% of host memory rounded up to 2 MiB: a round guess at what the host kernel keeps for itself
    (the model does not track it page by page; it only has to be unavailable to guests)."""
    return -(-memory // 100 // (2 * MiB)) * (2 * MiB)


def _parse_vm(table: Mapping[str, Any], i: int) -> VmSpec:
    place = f"vm[{i}]"
    v = _fields(table, VM_FIELDS, place)
    if not _NAME.match(v["name"]):
        raise ScenarioError(f"{place}.name", f"{v['name']!r} is not a usable name",
                            "letters, digits, '_', '.', '-', not starting with '.' or '-'")
    if v["backing"] == "hugetlb-1g" and v["memory"] % GiB:
        raise ScenarioError(f"{place}.memory", f"{format_size(v['memory'])} cannot be backed by 1G hugetlb pages",
                            "a multiple of 1 GiB with backing = \"hugetlb-1g\"")
    return VmSpec(i, v["name"], v["vcpus"], v["memory"], v["backing"], v["count"], v["start"])


def _check_vm_names(vms: tuple[VmSpec, ...]) -> None:
    seen: dict[str, int] = {}
    for vm in vms:
        names = {vm.name, *vm.instance_names}
        for n in sorted(names):
            if n in seen and seen[n] != vm.index:
                raise ScenarioError(f"vm[{vm.index}].name", f"{n!r} is already used by vm[{seen[n]}]",
                                    "a name no other VM (or NAME-i of a counted VM) uses")
            seen[n] = vm.index


def _check_host_fits(host: HostSpec, vms: tuple[VmSpec, ...]) -> None:
    need = sum(v.memory * v.count for v in vms if v.start)
    avail = host.memory - host.reserved
    if need > avail:
        raise ScenarioError(
            "host.memory",
            f"VMs created at start need {format_size(need)} but the host has {format_size(avail)} "
            f"after {format_size(host.reserved)} reserved",
            f"at most {format_size(avail)} of guest memory live at once (raise host.memory, "
            "or lower vm memory or count)")


def _parse_phase(table: Mapping[str, Any], i: int, kinds: dict[str, PhaseKind],
                 vms: tuple[VmSpec, ...]) -> PhaseSpec:
    place = f"phase[{i}]"
    if "kind" not in table:
        raise ScenarioError(f"{place}.kind", "missing required field (which phase kind this is)",
                            ", ".join(sorted(kinds)))
    name = table["kind"]
    if not isinstance(name, str) or name not in kinds:
        hint = did_you_mean(name, kinds) if isinstance(name, str) else ""
        raise ScenarioError(f"{place}.kind", f"{name!r} is not a phase kind{hint}", ", ".join(sorted(kinds)))
    kind = kinds[name]
    specs = {**{k: FieldSpec.coerce(s) for k, s in kind.fields.items()}, "repeat": PHASE_COMMON["repeat"]}
    values = _fields(table, specs, place, skip=("kind", "vm"))
    repeat = values.pop("repeat")
    targets = _resolve_targets(table.get("vm", "*"), f"{place}.vm", vms)
    by_name = {n: v for v in vms for n in (v.name, *v.instance_names)}
    for fname, spec in specs.items():
        if spec.type == "vm" and values.get(fname) is not None:
            ref = values[fname]
            if ref not in by_name:
                raise ScenarioError(f"{place}.{fname}", f"no VM named {ref!r}{did_you_mean(ref, by_name)}",
                                    ", ".join(v.name for v in vms) or "(no [[vm]] declared)")
            values[fname] = by_name[ref].name
    for fname, spec in specs.items():
        if spec.bound is None or values.get(fname) is None:
            continue
        limit_vms = ([(t, by_name[t]) for t in targets] if spec.bound == "vm"
                     else [(values[spec.bound], by_name[values[spec.bound]])]
                     if values.get(spec.bound) is not None else [])
        value = values[fname]
        top = value[1] if spec.type == "range" else value
        given = "" if fname in table else " (the default)"
        for vm_name, vm in limit_vms:
            if top > vm.memory:
                what = f"end {format_size(top)}" if spec.type == "range" else format_size(top)
                raise ScenarioError(f"{place}.{fname}",
                                    f"{what}{given} is larger than VM {vm_name!r} ({format_size(vm.memory)})",
                                    f"at most {format_size(vm.memory)}")
    return PhaseSpec(i, name, targets, values, repeat)


def _resolve_targets(value: Any, place: str, vms: tuple[VmSpec, ...]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ScenarioError(place, "expected a VM name, a list of names, or '*'",
                            _vm_choices(vms))
    out: list[str] = []
    for n in names:
        if n == "*":
            picked = [i for v in vms if v.start for i in v.instance_names]
        else:
            spec = next((v for v in vms if n == v.name or n in v.instance_names), None)
            if spec is None:
                known = [x for v in vms for x in {v.name, *v.instance_names}]
                raise ScenarioError(place, f"no VM named {n!r}{did_you_mean(n, known)}", _vm_choices(vms))
            if not spec.start:
                raise ScenarioError(place, f"{n!r} is a template (start = false), which only churn "
                                    "phases instantiate", _vm_choices(vms))
            picked = list(spec.instance_names) if n == spec.name else [n]
        out.extend(p for p in picked if p not in out)
    return tuple(out)


def _vm_choices(vms: tuple[VmSpec, ...]) -> str:
    names = [v.name for v in vms if v.start]
    return ", ".join(["'*'", *names]) if names else "'*' (no VM is created at start)"
