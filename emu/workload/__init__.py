"""Workloads: scenario files, their validation, and the generators that turn phases into operations.

Public API::

    load_scenario(path, phase_kinds) -> Scenario          # TOML file -> validated scenario
    parse_scenario(data, phase_kinds, source=...) -> Scenario
    build_workload(scenario, phase_kinds=None) -> Workload  # plan: Layout, slot names, estimate
    Workload.batches(batch_size=1 << 16)                   # lazily generated OP_DTYPE arrays
    parse_size / parse_duration / format_size / format_duration
    ScenarioError                                          # a ValueError naming the place

Phase kinds are :class:`emu.records.PhaseKind` records whose ``fields`` are :class:`FieldSpec`
and whose generator receives a :class:`GenContext`; the built-in ones are in
``emu.builtin_phases``.
"""
from emu.workload.errors import ScenarioError
from emu.workload.fields import FIELD_TYPES, REQUIRED, RESERVED_PHASE_KEYS, FieldSpec, check_fields
from emu.workload.generate import GenContext, VmInstance, VmState, Workload, build_workload, vm_create_ops
from emu.workload.ops import CHUNK, concat, interleave, ops, place_ranges, rechunk
from emu.workload.schema import (HOST_FIELDS, PHASE_COMMON, VM_FIELDS, HostSpec, PhaseSpec, Scenario,
                                 VmSpec, load_scenario, parse_scenario, phase_kind_map)
from emu.workload.sizes import format_duration, format_size, parse_duration, parse_size

__all__ = [
    "CHUNK", "FIELD_TYPES", "HOST_FIELDS", "PHASE_COMMON", "REQUIRED", "RESERVED_PHASE_KEYS",
    "VM_FIELDS", "FieldSpec", "GenContext", "HostSpec", "PhaseSpec", "Scenario", "ScenarioError",
    "VmInstance", "VmSpec", "VmState", "Workload", "build_workload", "check_fields", "concat",
    "format_duration", "format_size", "interleave", "load_scenario", "ops", "parse_duration",
    "parse_scenario", "parse_size", "phase_kind_map", "place_ranges", "rechunk", "vm_create_ops",
]
