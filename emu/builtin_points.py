"""The core's probe points, declared through the same hook third-party plugins use.

Every event carries the virtual time, the context, the VM slot and the vCPU (-1 when none), then
up to six integer fields, named here in order.
"""
from emu import hookimpl
from emu.records import Field, ProbePoint

CORE_POINTS = (
    ProbePoint("emu:op", "Every operation of the workload as the driver loop starts it.",
               (Field("kind", "op", "operation kind (emu.model.consts.OP_*)"), Field("gfn"),
                Field("count"), Field("level", "level"))),
    ProbePoint("kvm:fault", "A TDP page fault was handled (the EPT/NPT violation path).",
               (Field("gfn"), Field("level", "level", "level mapped"), Field("private", "bool"),
                Field("pfn"))),
    ProbePoint("kvm:map", "A leaf mapping was installed.",
               (Field("gfn"), Field("level", "level"), Field("pfn"), Field("private", "bool"))),
    ProbePoint("kvm:zap", "A leaf mapping was removed.",
               (Field("gfn"), Field("level", "level"), Field("cause", "cause"))),
    ProbePoint("kvm:split", "A huge leaf was split into 512 smaller leaves.",
               (Field("gfn"), Field("level", "level", "level of the huge leaf"),
                Field("cause", "cause"))),
    ProbePoint("kvm:merge", "512 leaves became one huge leaf.",
               (Field("gfn"), Field("level", "level", "level of the new leaf"),
                Field("cause", "cause"))),
    ProbePoint("kvm:pt_alloc", "A TDP page-table page was allocated and linked.",
               (Field("level", "level", "level of the entries it holds"), Field("pfn"))),
    ProbePoint("kvm:pt_free", "A TDP page-table page was freed.",
               (Field("level", "level"), Field("pfn"))),
    ProbePoint("mm:alloc", "A host allocation.",
               (Field("site", "site"), Field("order"), Field("pfn"), Field("atomic", "bool"))),
    ProbePoint("mm:free", "Host frames were freed.",
               (Field("order"), Field("pfn"), Field("owner", "owner"))),
    ProbePoint("pool:topup", "A memory cache was topped up.",
               (Field("pool", "pool"), Field("before"), Field("after"))),
    ProbePoint("pool:consume", "A page was taken from a memory cache.",
               (Field("pool", "pool"), Field("left"))),
    ProbePoint("lock:acquire", "A lock was taken.",
               (Field("lock", "lock"), Field("write", "bool"), Field("wait_ns", "ns"))),
    ProbePoint("guest:accept", "The guest accepted or validated memory.",
               (Field("gfn"), Field("level", "level"), Field("result", "accept"))),
    ProbePoint("gmem:prepare", "guest_memfd handed out a folio for the first time.",
               (Field("gfn"), Field("pfn"), Field("order"))),
    ProbePoint("gmem:invalidate", "guest_memfd freed frames.",
               (Field("gfn"), Field("pfn"), Field("npages"))),
    ProbePoint("emu:error", "An error event (allocation in atomic context, OOM, ...).",
               (Field("kind", "error"), Field("a"), Field("b"))),
)


@hookimpl
def emu_probe_points():
    return list(CORE_POINTS)
