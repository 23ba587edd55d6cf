"""``emu/model/clock.py``: locks with free-at times, atomic context, per-context virtual clocks."""
import numpy as np

from emu.model import consts as C

from .scenarios import GUEST_PAGES, only_costs, phase, scenario, vm

FLUSH = 7000    # ns; with every other cost 0, the only work charged is TLB flushes

# a conversion of one page in the last 2M region, on the VMM thread (write lock): it zaps the
# region's 2M leaf and flushes; the guest then touches the page again (a fault: read lock)
CONVERT_LAST_PAGE = phase("convert", direction="to_shared", pattern="scattered", size="4KiB",
                          region=["1022MiB", "1GiB"])


def test_readers_do_not_wait_for_readers(run_toml):
    """mmu_lock is a rwlock: faults take it for read and overlap (clock.py docstring)."""
    # vCPU k starts at vm_create + (k + 1) * vcpu_create ns, so their faults interleave in
    # virtual time: a reader that waited for readers would wait here
    text = scenario(vm("4k", vcpus=8), phase("touch", accept_on_touch=False))
    r = run_toml(text, teardown=False)
    assert r["locks"]["mmu_lock"] == {"acquisitions": GUEST_PAGES, "contended": 0, "wait_ns": 0}


def test_reader_waits_for_writer_that_holds_the_lock_later(run_toml):
    """A fault (reader) waits until the conversion (writer) releases mmu_lock; the wait counts."""
    text = scenario(phase("touch"), CONVERT_LAST_PAGE)
    r = run_toml(text, costs=only_costs(tlb_flush=FLUSH), teardown=False)
    # the VMM holds the lock from 0 to FLUSH; the vCPU faults at 0 and waits FLUSH
    # acquisitions: 512 faults of the touch, the conversion, the fault after it
    assert r["locks"]["mmu_lock"] == {"acquisitions": 514, "contended": 1, "wait_ns": FLUSH}
    ctx = r["time"]["by_context"]
    assert (ctx["vcpu"]["clock_max_ns"], ctx["vcpu"]["busy_ns"]) == (FLUSH, 0)
    assert (ctx["vmm"]["clock_max_ns"], ctx["vmm"]["busy_ns"]) == (FLUSH, FLUSH)


def test_writer_waits_for_reader_that_holds_the_lock_later(run_toml):
    """khugepaged's collapse (writer) waits for the VMM's recovery pass (reader) to release it."""
    text = scenario(
        phase("boot"),                                      # 4 MiB image: 2 regions at 4K
        CONVERT_LAST_PAGE,                                  # region 511: 4K folios from now on
        phase("recover"),                                   # merges regions 0 and 1
        phase("folio_collapse", pick="any", count=512))     # collapses region 511
    r = run_toml(text, costs=only_costs(tlb_flush=FLUSH), teardown=False)
    # the conversion: VMM writer [0, F], the vCPU's fault waits F (as above). The recovery
    # pass holds the read lock from F and flushes once per merge: [F, 3F]. khugepaged wakes
    # up at the vCPUs' time F and waits 2F for the reader, then its zap flushes: [3F, 4F]
    assert r["merges"]["by_cause"] == {"recovery": {"2M": 2}}
    assert r["counters"]["folio_collapses"] == 1
    # 1024 image pages + 510 accepted regions + conversion + fault + recovery + collapse
    assert r["locks"]["mmu_lock"] == {"acquisitions": 1538, "contended": 2,
                                      "wait_ns": FLUSH + 2 * FLUSH}
    kh = r["time"]["by_context"]["khugepaged"]
    assert (kh["clock_max_ns"], kh["busy_ns"]) == (4 * FLUSH, FLUSH)


def test_every_lock_taken_is_released(run_toml):
    """No context stays in atomic context (holding a spinlock) once its operation is done."""
    text = scenario(
        vm("thp", vcpus=2), vm("thp", memory="256MiB", vcpus=2, name="t", start=False),
        phase("boot", vm="g"), phase("touch", vm="g", pattern="random", accesses=5000),
        phase("convert", vm="g", size="1MiB"), phase("punch", vm="g", size="4MiB"),
        phase("folio_split", vm="g", count=8), phase("touch", vm="g"),
        phase("folio_collapse", vm="g", count=8), phase("recover", vm="g"),
        phase("churn", template="t", count=3, concurrency=2, touch="8MiB"))
    r = run_toml(text)
    assert r.session.S.ctx_atomic.tolist() == [0] * len(r.session.S.ctx_atomic)
    assert r["errors"]["total"] == 0


def test_allocation_under_spinlock_is_an_atomic_alloc_error_with_its_site(run_toml):
    """An allocation while mmu_lock is held is ``atomic_alloc`` at its call site (lockdep)."""
    def never_topped_up(session):
        # minimum 0: the fault path's cache is never filled, so every table it takes under
        # mmu_lock is a direct allocation (no plain scenario does this; see test_pools)
        session.S.pool_min[C.POOL_SHADOW_PAGE] = 0

    r = run_toml(scenario(phase("touch")), session_hook=never_topped_up)
    errors = r["errors"]
    # the first fault of a 2M-mapped guest makes its root, PDPT and PD
    assert errors["by_kind"] == {"atomic_alloc": 3, "pool_empty": 3}
    assert errors["by_site"] == {"atomic_alloc": {"kvm_tdp_mmu_get_vcpu_root": 1,
                                                  "kvm_tdp_mmu_map:pt_page": 2}}
    atomic = [e for e in errors["first"] if e["kind"] == "atomic_alloc"]
    assert [(e["site"], e["context"]) for e in atomic] == [
        ("kvm_tdp_mmu_get_vcpu_root", "vcpu"), ("kvm_tdp_mmu_map:pt_page", "vcpu"),
        ("kvm_tdp_mmu_map:pt_page", "vcpu")]
    assert len({e["op_index"] for e in atomic}) == 1      # all in the guest's first fault


def test_work_is_charged_to_the_context_doing_it(run_toml):
    """Each context has its own clock; work advances the clock of the context doing it."""
    # every cost 0 but a fault's software path: only vCPUs fault. The vCPUs take turns page by
    # page from gfn 1, so vCPU 0 makes the first access to region 0 and vCPU 1 to the 511 others
    text = scenario(vm("thp", vcpus=2), phase("touch", offset="4KiB", accept_on_touch=False))
    r = run_toml(text, costs=only_costs(fault=1000), teardown=False)
    ctx = r["time"]["by_context"]
    assert r["counters"]["faults"] == 512
    assert ctx["vcpu"] == {"contexts": 2, "busy_ns": 512 * 1000, "clock_max_ns": 511 * 1000}
    assert ctx["vmm"]["busy_ns"] == 0 and ctx["rcu_callback"]["busy_ns"] == 0
    assert r["time"]["virtual_ns"] == 511 * 1000


def test_a_context_behind_a_hold_does_not_wait_for_it(run_toml):
    """Locks are remembered as the intervals they were held (clock.py docstring): a vCPU whose
    clock is still before a writer's hold does not wait for it, one whose clock falls inside it
    does. vCPU 0 starts AHEAD ns ahead of vCPU 1; the VMM wakes at vCPU 0's time, holds
    mmu_lock for write [AHEAD, AHEAD + F] to convert two pages, and each vCPU then faults on
    one of them."""
    ahead = 10**9

    def skew(session):
        """Move vCPU 0 ahead just before the conversion (creation syncs every clock)."""
        run = session.run

        def run_skewed(ops):
            first = np.flatnonzero(ops["kind"] == C.OP_CONVERT)
            if len(first) == 0:
                return run(ops)
            run(ops[:first[0]])
            session.S.ctx_clock[int(session.S.vm_vcpu_base[0])] += ahead
            return run(ops[first[0]:])

        session.run = run_skewed

    two_pages = phase("convert", direction="to_shared", pattern="ranges", range_size="8KiB",
                      align="8KiB", size="8KiB", region=["1022MiB", "1GiB"])
    text = scenario(vm(vcpus=2), phase("touch"), two_pages)
    r = run_toml(text, costs=only_costs(tlb_flush=FLUSH), teardown=False, session_hook=skew)
    lock = r["locks"]["mmu_lock"]
    # only vCPU 0's fault lands inside the hold; a free-at rule would make vCPU 1 wait too,
    # for AHEAD + F, the distance between the two clocks
    assert (lock["contended"], lock["wait_ns"]) == (1, FLUSH)
    assert r["counters"]["faults"] == 512 + 2
