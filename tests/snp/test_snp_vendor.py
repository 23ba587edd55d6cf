"""The snp vendor end to end: the RMP's size, prepare and the mapping level, the RMP fault paths,
page-state changes, invalidate, teardown and leaks, options, and what --check catches. One
compiled driver serves every test (options are runtime data)."""
import pytest

from emu.errors import EmuError

from emu_snp import abi

HOST = """
[host]
memory = "{host}"
seed = 5
"""

GUEST = """
[[vm]]
name = "guest"
vcpus = {vcpus}
memory = "{memory}"
backing = "{backing}"
"""


def phase(kind, **fields):
    import json
    return f'\n[[phase]]\nkind = "{kind}"\n' + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def scenario(*phases, host="2GiB", vcpus=2, memory="256MiB", backing="thp"):
    return HOST.format(host=host) + GUEST.format(vcpus=vcpus, memory=memory,
                                                 backing=backing) + "".join(phases)


EAGER_2M = phase("boot", image="4MiB", accept="eager", accept_level="2M")
REGIONS = 128                       # 2M regions in 256 MiB


def test_rmp_is_16_bytes_per_frame_plus_the_bookkeeping_area(run_toml):
    """§1: one 16-byte entry per 4K frame plus 16 KiB ([K-host] calc_rmp_sz), held at boot as
    static metadata in whole 2M regions (e820 reservation) and never given back."""
    r = run_toml(scenario(EAGER_2M, host="4GiB"), vendor="snp")
    rep = r["vendor_report"]
    frames = 4 << 18
    assert rep["rmp_bytes"] == 16 * frames + 16384
    assert rep["rmp_percent"] == pytest.approx(100 * 16 / 4096, abs=0.001)
    table_pages = -(-rep["rmp_bytes"] // 4096)
    assert rep["rmp_reserved_pages"] == -(-table_pages // 512) * 512
    mem = r["memory"]
    assert mem["end"]["static_metadata"] == mem["after_teardown"]["static_metadata"] \
        == rep["rmp_reserved_pages"]
    assert rep["rmp_entries"]["by_state"] == {"FIRMWARE": table_pages}


def test_thp_guest_memfd_gets_2m_entries_and_2m_mappings(run_toml):
    """§4.1: a 2M folio with 512 unassigned entries is prepared with one 2M RMPUPDATE; §3: the
    private mapping may then be 2M. Validating at 2M splits nothing."""
    r = run_toml(scenario(EAGER_2M), vendor="snp", check=True)
    assert r["check"]["violation"] is None and r["errors"]["total"] == 0
    c = r["counters"]
    # the image's two regions were launched page by page (4K Pre-Guest, R8)
    assert c["rmp_2m_assigned"] == REGIONS - 2
    assert r["mappings"]["installed"]["2M"] == REGIONS - 2
    assert r["vendor_report"]["rmp_splits"] == 0 and r["accepts"]["ok"] == REGIONS - 2
    assert r["firmware"]["by_call"]["SNP_LAUNCH_UPDATE"]["count"] == 1024 + 2   # + 2 VMSAs


def test_upstream_guest_memfd_is_4k_everywhere(run_toml):
    """§3: upstream guest_memfd hands out 4K folios only, so every RMP entry and every private
    mapping is 4K; a 2M PVALIDATE meets 4K entries (FAIL_SIZEMISMATCH) and is redone at 4K;
    each 4K RMPUPDATE splits the host direct map once per 2M region (R7)."""
    r = run_toml(scenario(EAGER_2M), vendor="snp:gmem=upstream", check=True)
    assert r["check"]["violation"] is None and r["errors"]["total"] == 0
    c = r["counters"]
    assert c["rmp_2m_assigned"] == 0 and c["folios_2m"] == 0
    assert r["mappings"]["installed"]["2M"] == 0
    assert r["accepts"]["size_mismatch"] == REGIONS - 2
    dm = r["vendor_report"]["direct_map_splits_by_cause"]
    assert dm["prepare"]["2M"] + dm["launch"]["2M"] == REGIONS
    assert r["vendor_report"]["rmp_splits"] == 0


def test_rescinding_a_4k_page_inside_a_2m_entry_psmashes_it(run_toml):
    """§4.3 [inferred]: the guest rescinds validation before a page goes shared; at 4K on a 2M
    entry that is an RMP #NPF, KVM PSMASHes (cause convert) and zaps the 512 gfns; the hole
    punch then makes that one page shared. Validated survives on the other 511 pages."""
    text = scenario(EAGER_2M, phase("convert", direction="to_shared", pattern="scattered",
                                    size="4KiB", region=["64MiB", "66MiB"]))
    r = run_toml(text, vendor="snp", check=True, teardown=False)
    rep = r["vendor_report"]
    assert rep["rmp_splits_by_cause"] == {"convert": 1}
    assert rep["outcomes"]["PVALIDATE #NPF(RMP|SIZEM)"] == 1
    assert r["counters"]["rmp_faults"] == 1 and r["counters"]["pvalidate_rescinds"] == 1
    assert r["mappings"]["zapped"]["2M"] == 1
    V = r.session.V
    flags = V.rmp_flags
    head = int(r.session.S.g_pfn[r.session.S.vm_gfn_base[0] + (64 << 8)])
    valid = (flags[head:head + 512] & abi.F_VALIDATED) != 0
    assigned = (flags[head:head + 512] & abi.F_ASSIGNED) != 0
    assert assigned.sum() == valid.sum() == 511


def test_without_rescind_the_punch_psmashes(run_toml):
    """§4.2: sev_gmem_invalidate PSMASHes an unaligned free inside a 2M entry before the 4K
    make-shared (cause punch) when nothing split it earlier (rescind=false)."""
    text = scenario(EAGER_2M, phase("convert", direction="to_shared", pattern="scattered",
                                    size="16KiB", region=["64MiB", "66MiB"]))
    r = run_toml(text, vendor="snp:rescind=false", check=True)
    assert r["vendor_report"]["rmp_splits_by_cause"] == {"punch": 1}
    assert r["counters"]["pvalidate_rescinds"] == 0 and r["counters"]["rmp_faults"] == 0


@pytest.mark.parametrize("size, per_request, requests, entries", [
    ("1MiB", 64, 4, 256), ("1MiB", 253, 2, 256), ("4MiB", 64, 1, 2)])
def test_page_state_change_requests(run_toml, size, per_request, requests, entries):
    """§4.3: the Linux guest uses 2M entries where the address is 2M aligned with 2M left, else
    4K, at most 64 per request (GHCB: 253); KVM forwards each run of one size to the VMM."""
    text = scenario(EAGER_2M, phase("convert", direction="to_shared", pattern="ranges",
                                    range_size=size, align=size if size == "1MiB" else "2MiB",
                                    size=size,
                                    region=["64MiB", "128MiB"]))
    r = run_toml(text, vendor=f"snp:psc_max_entries={per_request}")
    c = r["counters"]
    assert (c["psc_requests"], c["psc_entries"], c["psc_userspace_exits"]) == \
        (requests, entries, requests)
    # 2M-aligned whole regions are rescinded and given back at 2M: nothing splits
    assert r["vendor_report"]["rmp_splits"] == (0 if size == "4MiB" else 1)


def test_validating_at_4k_splits_each_region_once(run_toml):
    """R5/R6: the first 4K PVALIDATE in a region prepared at 2M makes KVM PSMASH it (the fault
    maps it at 4K: an NPT mapping smaller than the RMP entry); later ones find 4K entries."""
    text = scenario(phase("boot", image="4MiB", accept="lazy", lazy_accept="8MiB",
                          accept_level="4K"))
    r = run_toml(text, vendor="snp", check=True)
    rep = r["vendor_report"]
    assert rep["rmp_splits_by_cause"] == {"guest_accept": 2}
    assert r["counters"]["rmp_faults"] == 2 and r["accepts"]["ok"] == 1024
    assert rep["rmp_merges"] == 0


def test_a_host_folio_split_leaves_the_rmp_entry_2m_until_an_access(run_toml):
    """§4.6 [inferred]: the RMP size was bound to the folio at prepare; after the host splits
    the folio KVM maps 4K, and the access through it RMP-faults: PSMASH (cause folio_split)."""
    text = scenario(EAGER_2M, phase("folio_split", count=8),
                    phase("touch", pattern="sequential", accesses=65536))
    r = run_toml(text, vendor="snp", check=True)
    assert r["check"]["violation"] is None
    assert r["vendor_report"]["rmp_splits_by_cause"] == {"folio_split": 8}


def test_the_only_merge_is_a_fresh_2m_assignment(run_toml):
    """R4: no merge path: a 2M range split by 4K conversions comes back to 2M only when all 512
    pages went shared and the range is prepared again as one 2M entry, unvalidated, which the
    guest validates again at 2M; the NPT maps it 2M."""
    region = ["64MiB", "80MiB"]
    text = scenario(EAGER_2M,
                    phase("convert", direction="round_trip", pattern="scattered", size="256KiB",
                          region=region),
                    phase("convert", direction="round_trip", pattern="ranges",
                          range_size="2MiB", align="2MiB", size="16MiB", region=region,
                          accept_level="2M"))
    r = run_toml(text, vendor="snp", check=True, teardown=False)
    rep = r["vendor_report"]
    assert rep["rmp_splits_by_cause"] == {"convert": 8}
    assert rep["rmp_merges_by_cause"] == {"reassign": 8}
    assert r["merges"]["total"] == 0
    assert r["mappings"]["end"]["2M"] == REGIONS - 2


def test_teardown_gives_everything_back(run_toml):
    """§4.5: VMSAs made shared, SNP_DECOMMISSION, the guest context reclaimed; guest memory
    back to the hypervisor 2M or 4K with a cache flush each; nothing is left assigned."""
    text = scenario(EAGER_2M, phase("convert", direction="round_trip", pattern="scattered",
                                    size="64KiB"))
    r = run_toml(text, vendor="snp", check=True)
    after = r["memory"]["after_teardown"]
    assert after["fw_control"] == after["guest_private"] == after["leaked"] == 0
    fw = r["firmware"]["by_call"]
    assert fw["SNP_DECOMMISSION"]["count"] == fw["SNP_PAGE_RECLAIM"]["count"] == 1
    assert r["vendor_report"]["rmp_entries"]["by_state"] == {
        "FIRMWARE": -(-r["vendor_report"]["rmp_bytes"] // 4096)}
    assert r["errors"]["total"] == 0


def test_a_failed_reclaim_leaks_the_page(run_toml):
    """§4.5: if SNP_PAGE_RECLAIM fails KVM leaks the page (snp_leak_pages): it never returns."""
    r = run_toml(scenario(EAGER_2M), vendor="snp:reclaim_fail=1.0", check=True)
    assert r["memory"]["after_teardown"]["leaked"] == 1
    assert r["vendor_report"]["pages_leaked"] == 1
    assert r["errors"]["by_kind"] == {"firmware_failure": 1}
    assert r["vendor_report"]["outcomes"] == {"SNP_PAGE_RECLAIM SEV_RET_HWSEV_RET_PLATFORM": 1}


def test_busy_entries_are_retried(run_toml):
    """§2: Linux retries RMPUPDATE while the firmware holds the 2M range (FAIL_OVERLAP), KVM its
    PSMASH while FAIL_INUSE; the outcome is the same, at the cost of the retries."""
    text = scenario(EAGER_2M, phase("convert", direction="round_trip", pattern="scattered",
                                    size="64KiB"))
    calm = run_toml(text, vendor="snp")
    busy = run_toml(text, vendor="snp:busy=0.5", check=True)
    c = busy["counters"]
    assert c["overlap_retries"] > 0 and c["inuse_retries"] > 0
    assert busy["vendor_report"]["rmp_splits"] == calm["vendor_report"]["rmp_splits"]
    assert busy["mappings"] == calm["mappings"] and busy["errors"]["total"] == 0
    assert busy["firmware"]["by_call"]["RMPUPDATE"]["failed"] == c["overlap_retries"]


@pytest.mark.parametrize("direct_map, splits", [("1g", {"2M", "1G"}), ("2m", {"2M"}),
                                                ("4k", set())])
def test_direct_map_split_before_4k_rmpupdates(run_toml, direct_map, splits):
    """§2 [K-host adjust_direct_map]: a 4K RMPUPDATE first splits the large direct-map page over
    the frame (1G through 2M), one way; a host mapped at 4K has nothing to split."""
    r = run_toml(scenario(EAGER_2M), vendor=f"snp:direct_map={direct_map}")
    dm = r["vendor_report"]["direct_map_splits_by_cause"]
    assert {lvl for row in dm.values() for lvl in row} == splits
    # each split took a page-table page from the host, for good
    rep = r["vendor_report"]
    assert rep["direct_map_pt_pages"] == sum(n for row in dm.values() for n in row.values())


def test_vmsa_pages_are_never_2m_aligned(run_toml):
    """§2 erratum: snp_safe_alloc_page never keeps a 2M-aligned page for a VMSA."""
    r = run_toml(scenario(EAGER_2M, vcpus=8), vendor="snp", teardown=False)
    vmsa = r.session.V.vcpu_vmsa[:8]
    assert (vmsa >= 0).all() and (vmsa % 512 != 0).all()


def test_check_finds_a_mapping_larger_than_its_rmp_entry(run_toml):
    """--check: no private mapping is larger than its RMP entry, and every validated page is
    assigned (the vendor check, on a state broken by hand)."""
    r = run_toml(scenario(EAGER_2M), vendor="snp", teardown=False, check=True)
    s = r.session
    assert s.violations() == []
    S, V = s.S, s.V
    g = int(S.vm_gfn_base[0]) + 64 * 512
    head = int(S.g_pfn[g])
    assert S.g_map[g] == 2 and V.rmp_flags[head] & abi.F_2M
    V.rmp_flags[head] &= 0xFF ^ abi.F_2M                # the RMP says 4K, the NPT 2M
    assert any("own invariants" in p for p in s.violations())
    V.rmp_flags[head] |= abi.F_2M
    assert s.violations() == []
    free = int((S.frame_owner == 0).nonzero()[0][0])
    V.rmp_flags[free] = abi.F_VALIDATED                 # validated, not assigned
    assert any("own invariants" in p for p in s.violations())


@pytest.mark.parametrize("spec, message", [
    ("snp:gmem=huge", "'huge' is not allowed; allowed: upstream, thp"),
    ("snp:psc_max_entries=300", "psc_max_entries must be 1..253"),
    ("snp:busy=2", "busy must be between 0 and 1"),
])
def test_bad_options_are_one_clear_error(run_toml, spec, message):
    with pytest.raises(EmuError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_toml(scenario(EAGER_2M), vendor=spec)



def test_probe_points_carry_the_rmp_events(run_toml):
    """The snp probe points emit their fields: the rescind's RMP fault (trigger 0, a 2M entry,
    PSMASH returned 0), the PSMASH itself, the split with its cause, the page-state change."""
    from emu.model import consts as C
    from emu.model import state as st

    text = scenario(EAGER_2M, phase("convert", direction="to_shared", pattern="scattered",
                                    size="4KiB", region=["64MiB", "66MiB"]))
    rows = []
    names = ("snp:psmash", "snp:rmp_fault", "snp:split", "snp:psc")
    r = run_toml(text, vendor="snp", probe_points=names, on_events=rows.append)
    points = [p.name for p in r.session.tables.points]
    events = {}
    for batch in rows:
        for row in batch:
            events.setdefault(points[int(row[st.EV_POINT])], []).append(
                [int(x) for x in row[st.EV_ARGS:]])
    gfn = events["snp:rmp_fault"][0][0]
    assert 64 << 8 <= gfn < 66 << 8
    assert events["snp:rmp_fault"] == [[gfn, events["snp:rmp_fault"][0][1], C.LVL_2M, 0, 0, 0]]
    pfn2m = events["snp:rmp_fault"][0][1] & ~511
    assert events["snp:psmash"] == [[pfn2m, 0, 2000, 0, 0, 0]]
    assert [pfn2m, C.CAUSE_CONVERT] in [e[1:3] for e in events["snp:split"] if e[0] == 0]
    assert events["snp:psc"] == [[gfn, 1, 1, 1, 1, 1]]


def test_pages_the_build_did_not_add_are_prepared_at_launch_finish(run_toml):
    """R8/§4.1: the build populates guest_memfd page by page (4K Pre-Guest, launched); the rest
    of the folios it touched is prepared when the launch finishes (the THP series' walk over a
    folio skips assigned pages and fills the gap), so a 3 MiB image leaves one region of 256
    launched and 256 prepared 4K entries, mapped at 4K."""
    text = scenario(phase("boot", image="3MiB", accept="eager", accept_level="2M"))
    r = run_toml(text, vendor="snp", check=True, teardown=False)
    c = r["counters"]
    assert c["launch_gap_pages"] == 256
    assert c["rmp_4k_assigned"] == 768 + 256 + 2          # image, gap, VMSAs
    assert c["rmp_2m_assigned"] == REGIONS - 2
    assert r["mappings"]["end"]["2M"] == REGIONS - 2
    s = r.session
    g = int(s.S.vm_gfn_base[0]) + 512 + 300                # in the gap of the second region
    pfn = int(s.S.g_pfn[g])
    assert s.V.rmp_flags[pfn] & abi.F_ASSIGNED and not s.V.rmp_flags[pfn] & abi.F_IMMUTABLE
