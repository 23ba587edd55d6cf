"""bpftrace's classic one-liners (reference/probes-and-plugins.md §1.9), rewritten for emu's
points, run as users would type them; docs/probes.md lists the same rewrites."""
import io

import pytest

from tests.model.scenarios import phase, scenario, vm

WORKLOAD = scenario(vm("thp", vcpus=2), phase("touch"), phase("punch", size="64MiB"))

ONE_LINERS = {
    # 1. hello world
    "hello": 'BEGIN { printf("hello world\\n"); }',
    # 3. syscalls by process -> faults by execution context
    "count by context": "kvm:fault { @[ctx] = count(); }",
    # 4. read sizes of one pid as a histogram -> fault addresses of one VM
    "hist with predicate": "kvm:fault /vm == 0/ { @gfn = hist(args.gfn); }",
    # 5. vfs_read sizes, linear histogram
    "lhist": "kvm:map { @pfn = lhist(args.pfn % 2000, 0, 2000, 200); }",
    # 6. per-thread latency with a start map
    "latency": 'emu:op /args.kind == "access"/ { @start[tid] = nsecs; } '
               "kvm:fault /@start[tid]/ { @ns[ctx] = hist(nsecs - @start[tid]); "
               "delete(@start, tid); }",
    # 7. count by probe name with wildcards, exit after an interval
    "probe names": "kvm:* { @[probe] = count(); } interval:ms:1 { exit(); }",
    # 12. sum by key with a predicate
    "sum": "kvm:zap /args.level/ { @pages[args.cause] = sum(512); }",
    # 13. per-interval rate
    "rate": "kvm:fault { @ = count(); } interval:us:500 { print(@); clear(@); }",
    # 14. stats per key
    "stats": "kvm:map { @lvl[ctx] = stats(args.level); }",
    # 15. print the top entries, then clear
    "top": "BEGIN { @[1] = 0; @[2] = 1; @[9] = 8; @[10] = 9; print(@, 2); clear(@); exit(); }",
}


@pytest.mark.parametrize("name", list(ONE_LINERS))
def test_one_liner_runs(name, run_toml):
    out = io.StringIO()
    result = run_toml(WORKLOAD, probes=[ONE_LINERS[name]], probe_stream=out)
    text = out.getvalue()
    assert result.probes is not None
    assert text.strip(), text
    if name == "hello":
        assert text.startswith("hello world\n")
    if name == "count by context":
        assert "@[g/vcpu0]: 512" in text      # the touch phase runs on the first vCPU
    if name == "top":
        assert text.startswith("@[9]: 8\n@[10]: 9\n")
    if name == "stats":
        assert "{ .count = " in text
    if name == "latency":
        assert "@ns[g/vcpu" in text
