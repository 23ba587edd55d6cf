"""The TDX module's rules, call by call, through the scripting API (emu_tdx.script), which runs
the same kernels as the emulator. Each test names the rule of reference/tdx.md it checks."""
import pytest

from emu_tdx.script import TdxModule

GPA0 = 0


@pytest.fixture(scope="module")
def fresh():
    def make(**kw):
        kw.setdefault("host", "64MiB")
        kw.setdefault("guest", "8MiB")
        return TdxModule(**kw)
    return make


def ok(r):
    assert r.ok, r
    return r


def pair_for(m, hpa):
    """Install the Dynamic PAMT pair of ``hpa``'s region with pages from another region."""
    return m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.region_of(hpa), page0=m.page(), page1=m.page())


def build_td(m, dynamic=True, vcpus=1):
    """A TD through KEY.CONFIG/MNG.INIT with its control pages in one region with a pair."""
    meta = m.huge_page()                     # pairs live here, outside the TD's region
    pages = m.huge_page()
    if dynamic:
        ok(m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=pages, page0=meta, page1=meta + 4096))
    nxt = iter(range(pages, pages + (2 << 20), 4096))
    tdr = next(nxt)
    ok(m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1))
    for _ in range(4):
        ok(m.seamcall("TDH.MNG.ADDCX", page=next(nxt), tdr=tdr))
    ok(m.seamcall("TDH.MNG.KEY.CONFIG", tdr=tdr))
    ok(m.seamcall("TDH.MNG.INIT", tdr=tdr))
    vps = []
    for _ in range(vcpus):
        tdvpr = next(nxt)
        ok(m.seamcall("TDH.VP.CREATE", tdvpr=tdvpr, tdr=tdr))
        for _ in range(5):
            ok(m.seamcall("TDH.VP.ADDCX", page=next(nxt), tdvpr=tdvpr))
        ok(m.seamcall("TDH.VP.INIT", tdvpr=tdvpr))
        vps.append(tdvpr)
    tables = [next(nxt) for _ in range(3)]
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=3, tdr=tdr, page=tables[0]))
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=2, tdr=tdr, page=tables[1]))
    return tdr, vps, nxt, tables


def test_missing_pair_then_pamt_add(fresh):
    """§1.2: a control page in a region without a pair fails MISSING_PAMT_PAGE_PAIR; PAMT.ADD
    installs it (page count 0), a second ADD is HPA_RANGE_NOT_FREE."""
    m = fresh()
    tdr = m.page()
    assert m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1).name == "TDX_MISSING_PAMT_PAGE_PAIR"
    p0, p1 = m.huge_page(), None
    p1 = p0 + 4096
    ok(m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.region_of(tdr), page0=p0, page1=p1))
    assert m.page_count(tdr) == 0
    r = m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.region_of(tdr), page0=p0 + 8192, page1=p0 + 12288)
    assert r.name == "TDX_HPA_RANGE_NOT_FREE"
    ok(m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1))
    assert m.page_count(tdr) == 1 and m.page_type(tdr) == "TDR"


def test_pamt_add_rejects_pages_in_use(fresh):
    """§2.5 PAMT.ADD: both pages must be free (a page already in a pair is PAGE_NOT_FREE)."""
    m = fresh()
    a, b = m.huge_page(), m.huge_page()
    ok(m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=a, page0=b, page1=b + 4096))
    r = m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.huge_page(), page0=b, page1=b + 8192)
    assert r.name == "TDX_PAGE_NOT_FREE"


def test_pamt_remove_needs_an_empty_region_and_returns_the_pair(fresh):
    """§2.5 PAMT.REMOVE: NO_PAMT_PAGE_PAIR without a pair, PAMT_PAGE_NOT_EMPTY while a page of
    the region belongs to a TD; RDX/R8 return the pair."""
    m = fresh()
    r = m.huge_page()
    assert m.seamcall("TDH.PHYMEM.PAMT.REMOVE", hpa=r).name == "TDX_NO_PAMT_PAGE_PAIR"
    meta = m.huge_page()
    ok(m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=r, page0=meta, page1=meta + 4096))
    ok(m.seamcall("TDH.MNG.CREATE", tdr=r, hkid=1))
    assert m.seamcall("TDH.PHYMEM.PAMT.REMOVE", hpa=r).name == "TDX_PAMT_PAGE_NOT_EMPTY"
    r2 = m.huge_page()
    ok(m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=r2, page0=meta + 8192, page1=meta + 12288))
    out = ok(m.seamcall("TDH.PHYMEM.PAMT.REMOVE", hpa=r2)).out
    assert out == {"rdx": meta + 8192, "r8": meta + 12288}


def test_static_pamt_needs_no_pair_and_refuses_pamt_add(fresh):
    """§1.1/§2.5: with static PAMT every 4K entry exists; PAMT.ADD is OPERAND_INVALID."""
    m = fresh(pamt="static")
    ok(m.seamcall("TDH.MNG.CREATE", tdr=m.page(), hkid=1))
    r = m.seamcall("TDH.PHYMEM.PAMT.ADD", hpa=m.huge_page(), page0=m.page(), page1=m.page())
    assert r.name == "TDX_OPERAND_INVALID"


def test_lifecycle_order_is_enforced(fresh):
    """TD lifecycle: MNG.INIT needs KEY.CONFIG and every TDCS page; PAGE.ADD needs an
    initialized, not finalized TD (TDX_OP_STATE_INCORRECT, chosen code)."""
    m = fresh(pamt="static")
    tdr = m.page()
    ok(m.seamcall("TDH.MNG.CREATE", tdr=tdr, hkid=1))
    assert m.seamcall("TDH.MNG.INIT", tdr=tdr).name == "TDX_OP_STATE_INCORRECT"
    ok(m.seamcall("TDH.MNG.KEY.CONFIG", tdr=tdr))
    assert m.seamcall("TDH.MNG.INIT", tdr=tdr).name == "TDX_OPERAND_INVALID"   # TDCS missing
    for _ in range(4):
        ok(m.seamcall("TDH.MNG.ADDCX", page=m.page(), tdr=tdr))
    ok(m.seamcall("TDH.MNG.INIT", tdr=tdr))
    assert m.seamcall("TDH.MNG.ADDCX", page=m.page(), tdr=tdr).name == "TDX_OP_STATE_INCORRECT"


def test_sept_add_walk_and_state(fresh):
    """§2.3: SEPT.ADD needs the parent tables (EPT_WALK_FAILED) and a FREE entry
    (EPT_ENTRY_STATE_INCORRECT on a second add)."""
    m = fresh(guest="2GiB")
    tdr, _, nxt, _ = build_td(m)
    assert m.seamcall("TDH.MEM.SEPT.ADD", gpa=1 << 30, level=1, tdr=tdr,
                      page=next(nxt)).name == "TDX_EPT_WALK_FAILED"
    pt = next(nxt)
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr, page=pt))
    assert m.page_type(pt) == "EPT" and m.sept_state(0, GPA0, 1) == "NL_MAPPED"
    assert m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr,
                      page=next(nxt)).name == "TDX_EPT_ENTRY_STATE_INCORRECT"


def test_page_add_and_aug_states(fresh):
    """§2.5: PAGE.ADD (build) makes MAPPED; PAGE.AUG (runtime) makes PENDING; AUG on a used
    entry is EPT_ENTRY_STATE_INCORRECT; a data page without a pair is MISSING_PAMT_PAGE_PAIR."""
    m = fresh()
    tdr, vps, nxt, _ = build_td(m)
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr, page=next(nxt)))
    ok(m.seamcall("TDH.MEM.PAGE.ADD", gpa=GPA0, tdr=tdr, hpa=next(nxt)))
    assert m.sept_state(0, GPA0) == "MAPPED"
    ok(m.seamcall("TDH.MR.FINALIZE", tdr=tdr))
    assert m.seamcall("TDH.MEM.PAGE.AUG", gpa=GPA0, level=0, tdr=tdr,
                      hpa=next(nxt)).name == "TDX_EPT_ENTRY_STATE_INCORRECT"
    lonely = m.huge_page()
    assert m.seamcall("TDH.MEM.PAGE.AUG", gpa=4096, level=0, tdr=tdr,
                      hpa=lonely).name == "TDX_MISSING_PAMT_PAGE_PAIR"
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=4096, level=0, tdr=tdr, hpa=next(nxt)))
    assert m.sept_state(0, 4096) == "PENDING"


def test_2m_aug_refuses_a_region_with_a_pair(fresh):
    """§2.5 (inferred): a 2M AUG needs the 2M PAMT entry NDA, so no pair installed."""
    m = fresh()
    tdr, _, nxt, _ = build_td(m)
    ok(m.seamcall("TDH.MR.FINALIZE", tdr=tdr))
    big = m.huge_page()
    pair_for(m, big)
    assert m.seamcall("TDH.MEM.PAGE.AUG", gpa=2 << 20, level=1, tdr=tdr,
                      hpa=big).name == "TDX_PAGE_METADATA_INCORRECT"
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=2 << 20, level=1, tdr=tdr, hpa=m.huge_page()))
    assert m.sept_state(0, 2 << 20, 1) == "PENDING"


def test_accept_sizes(fresh):
    """§2.5 ACCEPT: 2M PENDING + 2M accept -> MAPPED, again -> ALREADY_ACCEPTED; a 4K accept
    under a 2M leaf exits to the host; a 2M accept over 4K leaves is PAGE_SIZE_MISMATCH."""
    m = fresh()
    tdr, vps, nxt, _ = build_td(m)
    ok(m.seamcall("TDH.MR.FINALIZE", tdr=tdr))
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=2 << 20, level=1, tdr=tdr, hpa=m.huge_page()))
    assert m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=2 << 20, level=0).name == \
        "EXIT_EPT_VIOLATION"
    ok(m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=2 << 20, level=1))
    assert m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=2 << 20, level=1).name == \
        "TDX_PAGE_ALREADY_ACCEPTED"
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr, page=next(nxt)))
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=GPA0, level=0, tdr=tdr, hpa=next(nxt)))
    assert m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=GPA0, level=1).name == \
        "TDX_PAGE_SIZE_MISMATCH"
    ok(m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=GPA0, level=0))


def test_block_track_remove_with_a_running_vcpu(fresh):
    """§2.4: while the TD runs, REMOVE needs BLOCK (GPA_RANGE_NOT_BLOCKED) and tracking
    (TLB_TRACKING_NOT_DONE until every vCPU of the blocked epoch exited); a second TRACK
    while a vCPU is still in the previous epoch is PREVIOUS_TLB_EPOCH_BUSY."""
    m = fresh()
    tdr, vps, nxt, _ = build_td(m)
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr, page=next(nxt)))
    ok(m.seamcall("TDH.MR.FINALIZE", tdr=tdr))
    hpa = next(nxt)
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=GPA0, level=0, tdr=tdr, hpa=hpa))
    ok(m.seamcall("TDH.VP.ENTER", tdvpr=vps[0]))
    assert m.seamcall("TDH.MEM.PAGE.REMOVE", gpa=GPA0, level=0, tdr=tdr).name == \
        "TDX_GPA_RANGE_NOT_BLOCKED"
    ok(m.seamcall("TDH.MEM.RANGE.BLOCK", gpa=GPA0, level=0, tdr=tdr))
    assert m.seamcall("TDH.MEM.RANGE.BLOCK", gpa=GPA0, level=0, tdr=tdr).name == \
        "TDX_GPA_RANGE_ALREADY_BLOCKED"
    ok(m.seamcall("TDH.MEM.TRACK", tdr=tdr))
    assert m.seamcall("TDH.MEM.PAGE.REMOVE", gpa=GPA0, level=0, tdr=tdr).name == \
        "TDX_TLB_TRACKING_NOT_DONE"
    assert m.seamcall("TDH.MEM.TRACK", tdr=tdr).name == "TDX_PREVIOUS_TLB_EPOCH_BUSY"
    m.td_exit(vps[0])
    r = ok(m.seamcall("TDH.MEM.PAGE.REMOVE", gpa=GPA0, level=0, tdr=tdr))
    assert r.out["rcx"] & ~(1 << 62) == hpa
    assert m.sept_state(0, GPA0) == "FREE" and m.page_type(hpa) == "NDA"


def test_removal_hint_when_the_count_reaches_zero(fresh):
    """§1.2: the removing call ORs bit 62 into the returned HPA when the region's count hits 0."""
    m = fresh()
    tdr, vps, nxt, _ = build_td(m)
    ok(m.seamcall("TDH.MEM.SEPT.ADD", gpa=GPA0, level=1, tdr=tdr, page=next(nxt)))
    data = m.huge_page()
    pair_for(m, data)
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=GPA0, level=0, tdr=tdr, hpa=data))
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=4096, level=0, tdr=tdr, hpa=data + 4096))
    r1 = ok(m.seamcall("TDH.MEM.PAGE.REMOVE", gpa=GPA0, level=0, tdr=tdr))
    r2 = ok(m.seamcall("TDH.MEM.PAGE.REMOVE", gpa=4096, level=0, tdr=tdr))
    assert not r1.out["rcx"] >> 62 & 1 and r2.out["rcx"] >> 62 & 1


def test_demote_and_promote(fresh):
    """§2.5: DEMOTE turns a 2M PENDING leaf into 512 PENDING 4K leaves and a PAMT node with
    page count 512 (the pair in R12/R13); PROMOTE of mixed states fails
    EPT_INVALID_PROMOTE_CONDITIONS, of uniform ones returns the S-EPT page and the pair."""
    m = fresh(host="128MiB")
    tdr, vps, nxt, _ = build_td(m)
    big = m.huge_page()
    ok(m.seamcall("TDH.MEM.PAGE.AUG", gpa=2 << 20, level=1, tdr=tdr, hpa=big))
    meta = m.huge_page()
    sept = next(nxt)
    r = m.seamcall("TDH.MEM.PAGE.DEMOTE", gpa=2 << 20, level=1, tdr=tdr, page=sept,
                   pair0=meta, pair1=meta)
    assert r.name == "TDX_OPERAND_INVALID"          # the two halves must differ
    ok(m.seamcall("TDH.MEM.PAGE.DEMOTE", gpa=2 << 20, level=1, tdr=tdr, page=sept,
                  pair0=meta, pair1=meta + 4096))
    assert m.sept_state(0, 2 << 20, 1) == "NL_MAPPED"
    assert m.sept_state(0, (2 << 20) + 4096 * 7) == "PENDING"
    assert m.page_count(big) == 512 and m.page_type(big + 4096) == "REG"
    ok(m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=2 << 20, level=0))
    assert m.seamcall("TDH.MEM.PAGE.PROMOTE", gpa=2 << 20, level=1, tdr=tdr).name == \
        "TDX_EPT_INVALID_PROMOTE_CONDITIONS"
    for i in range(1, 512):
        ok(m.seamcall("TDG.MEM.PAGE.ACCEPT", td=0, gpa=(2 << 20) + i * 4096, level=0))
    r = ok(m.seamcall("TDH.MEM.PAGE.PROMOTE", gpa=2 << 20, level=1, tdr=tdr))
    assert r.out["r12"] == meta and r.out["r13"] == meta + 4096
    assert r.out["rcx"] & ~(1 << 62) == sept
    assert m.sept_state(0, 2 << 20, 1) == "MAPPED" and m.page_type(sept) == "NDA"


def test_reclaim_order_at_teardown(fresh):
    """§2.5 RECLAIM: not before the HKID is freed; the TDR last (TD_ASSOCIATED_PAGES_EXIST
    while children remain); VPFLUSHDONE needs every vCPU flushed."""
    m = fresh(pamt="static")
    tdr, vps, nxt, tables = build_td(m, dynamic=False)
    assert m.seamcall("TDH.PHYMEM.PAGE.RECLAIM", hpa=tables[0]).name == \
        "TDX_OP_STATE_INCORRECT"
    assert m.seamcall("TDH.MNG.VPFLUSHDONE", tdr=tdr).name == "TDX_FLUSHVP_NOT_DONE"
    ok(m.seamcall("TDH.VP.FLUSH", tdvpr=vps[0]))
    ok(m.seamcall("TDH.MNG.VPFLUSHDONE", tdr=tdr))
    ok(m.seamcall("TDH.MNG.KEY.FREEID", tdr=tdr))
    assert m.seamcall("TDH.PHYMEM.PAGE.RECLAIM", hpa=tdr).name == \
        "TDX_TD_ASSOCIATED_PAGES_EXIST"
    ok(m.seamcall("TDH.PHYMEM.PAGE.RECLAIM", hpa=tables[0]))
    assert m.page_type(tables[0]) == "NDA"


def test_a_reclaimed_tdvpr_no_longer_names_a_vcpu_and_its_slot_is_reused(fresh):
    """§2.5: the module finds a vCPU by its TDVPR address; once the TDVPR is reclaimed that
    address names no vCPU (OPERAND_INVALID) and the vCPU slot can be created again."""
    m = fresh(pamt="static", tds=2, vcpus=3)
    tdr, vps, nxt, tables = build_td(m, dynamic=False, vcpus=3)
    ok(m.seamcall("TDH.MR.FINALIZE", tdr=tdr))
    ok(m.seamcall("TDH.VP.ENTER", tdvpr=vps[2]))
    m.td_exit(vps[2])
    for tdvpr in vps:
        ok(m.seamcall("TDH.VP.FLUSH", tdvpr=tdvpr))
    ok(m.seamcall("TDH.MNG.VPFLUSHDONE", tdr=tdr))
    ok(m.seamcall("TDH.MNG.KEY.FREEID", tdr=tdr))
    assert m.seamcall("TDH.VP.ENTER", tdvpr=vps[1]).name == "TDX_OP_STATE_INCORRECT"
    ok(m.seamcall("TDH.PHYMEM.PAGE.RECLAIM", hpa=vps[1]))
    assert m.seamcall("TDH.VP.ENTER", tdvpr=vps[1]).name == "TDX_OPERAND_INVALID"
    assert m.seamcall("TDH.VP.ENTER", tdvpr=vps[2]).name == "TDX_OP_STATE_INCORRECT"
    tdr2, _, _, _ = build_td(m, dynamic=False, vcpus=0)
    assert m.seamcall("TDH.VP.CREATE", vcpu=1, tdvpr=next(nxt), tdr=tdr2).ok


def test_bad_operands_are_clear_errors(fresh):
    m = fresh()
    with pytest.raises(ValueError, match="unknown call"):
        m.seamcall("TDH.NOPE")
    with pytest.raises(ValueError, match="takes tdr"):
        m.seamcall("TDH.MEM.TRACK", tdr=0, level=1)
    with pytest.raises(ValueError, match="outside the TD's memory"):
        m.seamcall("TDH.MEM.RANGE.BLOCK", gpa=8 << 20, level=0, tdr=0)
