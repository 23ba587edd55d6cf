"""The RMP's rules, instruction by instruction and command by command, through the scripting API
(emu_snp.script), which runs the same kernels as the emulator. Each test names the rule of
reference/snp.md it checks; rules marked inferred there are checked under both settings of
their switch."""
import pytest

from emu_snp.script import SnpMachine

K = 4096
M2 = 2 << 20


def machine(**options):
    return SnpMachine(host="64MiB", guests=2, **options)


def ok(r):
    assert r.ok, r
    return r


def assign(m, spa, gpa, asid=1, size="4K", immutable=0):
    return m.issue("RMPUPDATE", spa=spa, gpa=gpa, asid=asid, assigned=1, pagesize=size,
                   immutable=immutable)


def shared(m, spa, size="4K"):
    return m.issue("RMPUPDATE", spa=spa, assigned=0, pagesize=size)


# --- RMPUPDATE (§2, R2) --------------------------------------------------------------------------

def test_rmpupdate_is_for_the_host_only():
    """§2: FAIL_PERMISSION when the current ASID is not 0 (not the hypervisor)."""
    m = machine()
    r = m.issue("RMPUPDATE", spa=m.page(), gpa=0, asid=1, assigned=1, caller_asid=1)
    assert r.name == "FAIL_PERMISSION" and r.code == 2


@pytest.mark.parametrize("operands", [
    {"spa": 1 << 40, "gpa": 0, "asid": 1, "assigned": 1},                   # beyond the RMP
    {"spa": M2 + K, "gpa": 0, "asid": 1, "assigned": 1, "pagesize": "2M"},  # 2M, unaligned SPA
    {"spa": M2, "gpa": K, "asid": 1, "assigned": 1, "pagesize": "2M"},      # 2M, unaligned GPA
    {"spa": M2, "gpa": 0, "asid": 1024, "assigned": 1},                     # ASID > 10 bits
    {"spa": M2, "gpa": 0, "asid": 1, "assigned": 2},
])
def test_rmpupdate_invalid_input(operands):
    """§2: FAIL_INPUT (1) for operands no entry can take."""
    m = machine()
    m.huge_page()
    assert m.issue("RMPUPDATE", **operands).name == "FAIL_INPUT"


def test_4k_assignment_makes_a_guest_invalid_page_and_counts_the_subpage():
    """§1/§2: rmp_make_private gives an assigned, unvalidated page (Guest-Invalid); the 2M-aligned
    entry counts the assigned 4K sub-pages of its range ([FW] sub-page count)."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base + 3 * K, 0x7000, asid=5))
    e = m.entry(base + 3 * K)
    assert e["assigned"] and not e["validated"] and e["asid"] == 5 and e["gpa"] == 0x7000
    assert m.state(base + 3 * K) == "GUEST_INVALID"
    assert m.entry(base)["subpages"] == 1
    ok(shared(m, base + 3 * K))
    assert m.state(base + 3 * K) == "HYPERVISOR" and m.entry(base)["subpages"] == 0


@pytest.mark.parametrize("conflict, name", [("overlap", "FAIL_OVERLAP"), ("input", "FAIL_INPUT")])
def test_2m_assignment_over_an_assigned_4k_entry(conflict, name):
    """R2 [inferred]: a 2M assignment needs all 512 entries unassigned; an assigned 4K sub-entry
    fails it, FAIL_OVERLAP by default (the sub-page count), FAIL_INPUT with conflict_code=input."""
    m = machine(conflict_code=conflict)
    base = m.huge_page()
    ok(assign(m, base + 511 * K, 0x1000))
    assert assign(m, base, 0, size="2M").name == name
    ok(shared(m, base + 511 * K))
    ok(assign(m, base, 0, size="2M"))
    assert m.lookup(base + 511 * K) == (True, "2M")


def test_2m_entry_is_represented_as_the_hardware_does():
    """§1/R1: the 2M-aligned entry holds the state with Page_Size set; entries 1..511 are
    assigned with ASID 0 and a 4K size ([FW]); snp_lookup_rmpentry reads assigned from the
    frame and the level from the 2M entry ([K-host]); the sub-page count is 511."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0x200000, asid=3, size="2M"))
    head, tail = m.entry(base), m.entry(base + 17 * K)
    assert head["pagesize"] == "2M" and head["asid"] == 3 and head["gpa"] == 0x200000
    assert head["subpages"] == 511
    assert tail["assigned"] and tail["asid"] == 0 and tail["pagesize"] == "4K"
    assert m.lookup(base + 17 * K) == (True, "2M") and m.state(base + 17 * K) == "GUEST_INVALID"
    ok(shared(m, base, "2M"))
    head = m.entry(base)
    # rmp_make_shared writes an all-zero state except the page size ([K-host])
    assert not head["assigned"] and head["pagesize"] == "2M" and head["asid"] == 0
    assert not m.entry(base + 17 * K)["assigned"] and m.lookup(base)[1] == "4K"


@pytest.mark.parametrize("mode, name", [("overlap", "FAIL_OVERLAP"), ("smash", "SUCCESS")])
def test_4k_update_inside_a_2m_entry(mode, name):
    """R2 [inferred]: a 4K RMPUPDATE inside an assigned 2M entry fails FAIL_OVERLAP (KVM PSMASHes
    first); with update_in_2m=smash it succeeds and the entry is split as PSMASH would."""
    m = machine(update_in_2m=mode)
    base = m.huge_page()
    ok(assign(m, base, 0, size="2M"))
    assert shared(m, base + 5 * K).name == name
    if mode == "smash":
        assert m.lookup(base) == (True, "4K") and m.entry(base + 6 * K)["asid"] == 1
        assert not m.entry(base + 5 * K)["assigned"] and m.entry(base)["subpages"] == 510


def test_immutable_entries_refuse_rmpupdate():
    """§2 [VERISMO]: an Immutable entry refuses an update with FAIL_PERMISSION: the RMP's own
    frames (Firmware, as SNP init leaves them) and a Pre-Guest page ([ISS245]'s ret 2)."""
    m = machine()
    assert m.state(m.rmp_page()) == "FIRMWARE"
    assert shared(m, m.rmp_page()).name == "FAIL_PERMISSION"
    spa = m.page()
    ok(assign(m, spa, 0, immutable=1))
    assert m.state(spa) == "PRE_GUEST"
    assert shared(m, spa).name == "FAIL_PERMISSION"


@pytest.mark.parametrize("rule, kept", [("clear", False), ("keep", True)])
def test_reassignment_and_validated(rule, kept):
    """§2 [VERISMO]: a change of ASID, GPA, size or assigned state resets Validated; rewriting
    the same state keeps it. 'A reassigned page is unvalidated' [inferred] is switchable."""
    m = machine(reassign_validated=rule)
    spa = m.page()
    ok(assign(m, spa, 0x5000))
    ok(m.issue("PVALIDATE", asid=1, gpa=0x5000, spa=spa))
    ok(assign(m, spa, 0x5000))                       # the same state again
    assert m.entry(spa)["validated"]
    ok(assign(m, spa, 0x6000))                       # another GPA: a reassignment
    assert m.entry(spa)["validated"] is kept
    ok(shared(m, spa))
    assert not m.entry(spa)["validated"]             # ASID 0 always resets it


def test_locked_entries_and_ranges():
    """§2: FAIL_INUSE when another CPU modifies the same entry; FAIL_OVERLAP while the firmware
    holds the 2M range (the lock on its 2M-aligned entry, [K-host] 'briefly locks 2 MB ranges')."""
    m = machine()
    base = m.huge_page()
    m.lock(base + 8 * K)
    assert assign(m, base + 8 * K, 0).name == "FAIL_INUSE"
    m.unlock(base + 8 * K)
    m.lock(base)
    assert assign(m, base + 8 * K, 0).name == "FAIL_OVERLAP"
    assert assign(m, base, 0, size="2M").name == "FAIL_OVERLAP"
    m.unlock(base)
    ok(assign(m, base + 8 * K, 0))


# --- PSMASH (§2, R3) -------------------------------------------------------------------------------

@pytest.mark.parametrize("perms, expected", [("keep", [5, 0, 0]), ("reset", [0, 0, 0])])
def test_psmash_keeps_the_state_of_every_page(perms, expected):
    """R3: PSMASH turns a 2M entry into 512 4K entries with its ASID, GPA + i, Immutable and
    Validated ([K-host] 'preserving the Validated bit'); the VMPL permissions [inferred]."""
    m = machine(psmash_perms=perms)
    base = m.huge_page()
    ok(assign(m, base, 0x400000, asid=2, size="2M"))
    ok(m.issue("PVALIDATE", asid=2, gpa=0x400000, spa=base, pagesize="2M"))
    ok(m.issue("RMPADJUST", asid=2, gpa=0x400000, spa=base, pagesize="2M", target_vmpl=1,
               perms=5))
    ok(m.issue("PSMASH", spa=base))
    for i in (0, 1, 300, 511):
        e = m.entry(base + i * K)
        assert (e["assigned"], e["pagesize"], e["asid"], e["gpa"], e["validated"]) == \
            (True, "4K", 2, 0x400000 + i * K, True)
        assert e["perms"] == expected
    assert m.lookup(base + 300 * K) == (True, "4K") and m.state(base) == "GUEST_VALID"
    assert m.entry(base)["subpages"] == 511


def test_psmash_error_paths():
    """§2: code 7 when the entry does not meet the requirements for expansion (not an assigned
    2M entry [inferred]), FAIL_INPUT for an unaligned SPA, FAIL_PERMISSION from a guest,
    FAIL_INUSE while another CPU holds the entry (KVM retries it)."""
    m = machine()
    base = m.huge_page()
    assert m.issue("PSMASH", spa=base).name == "FAIL_EXPAND"           # unassigned
    ok(assign(m, base + K, 0x1000))
    r = m.issue("PSMASH", spa=base)
    assert r.name == "FAIL_EXPAND" and r.code == 7                       # 4K entries
    ok(shared(m, base + K))
    ok(assign(m, base, 0, size="2M"))
    assert m.issue("PSMASH", spa=base + K).name == "FAIL_INPUT"
    assert m.issue("PSMASH", spa=base, caller_asid=1).name == "FAIL_PERMISSION"
    m.lock(base)
    assert m.issue("PSMASH", spa=base).name == "FAIL_INUSE"
    m.unlock(base)
    ok(m.issue("PSMASH", spa=base))
    assert m.issue("PSMASH", spa=base).name == "FAIL_EXPAND"           # already 4K


def test_no_merge_but_a_fresh_unvalidated_2m_assignment():
    """R4: after PSMASH the only way back to 2M is every page shared and a new 2M RMPUPDATE,
    which comes out unvalidated: the guest must validate again."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0, size="2M"))
    ok(m.issue("PVALIDATE", asid=1, gpa=0, spa=base, pagesize="2M"))
    ok(m.issue("PSMASH", spa=base))
    assert assign(m, base, 0, size="2M").name == "FAIL_OVERLAP"
    for i in range(512):
        ok(shared(m, base + i * K))
    ok(assign(m, base, 0, size="2M"))
    assert m.lookup(base) == (True, "2M") and not m.entry(base)["validated"]
    assert m.issue("PVALIDATE", asid=1, gpa=0, spa=base, pagesize="2M").ok


# --- PVALIDATE (§2, R5) ------------------------------------------------------------------------------

def test_pvalidate_size_mismatches_differ():
    """R5: a 2M PVALIDATE over 4K entries returns FAIL_SIZEMISMATCH (6), which the guest answers
    with 512 4K ones; a 4K one on a 2M entry is a #NPF with PFERR_GUEST_RMP|SIZEM for the host
    to PSMASH ([K-kvm])."""
    m = machine()
    a, b = m.huge_page(), m.huge_page()
    for i in range(512):
        ok(assign(m, a + i * K, i * K))
    r = m.issue("PVALIDATE", asid=1, gpa=0, spa=a, pagesize="2M")
    assert r.name == "FAIL_SIZEMISMATCH" and r.code == 6
    ok(assign(m, b, M2, size="2M"))
    r = m.issue("PVALIDATE", asid=1, gpa=M2 + 7 * K, spa=b + 7 * K)
    assert r.name == "#NPF(RMP|SIZEM)" and r.code == (1 << 31) | (1 << 35)
    ok(m.issue("PSMASH", spa=b))
    ok(m.issue("PVALIDATE", asid=1, gpa=M2 + 7 * K, spa=b + 7 * K))


@pytest.mark.parametrize("case", ["unassigned", "other_asid", "other_gpa", "immutable"])
def test_pvalidate_on_a_page_the_guest_does_not_own_faults(case):
    """R5 [VERISMO]: an entry that is unassigned, of another ASID, at another GPA, or Immutable
    ends the instruction in an RMP #NPF."""
    m = machine()
    spa = m.page()
    if case != "unassigned":
        ok(assign(m, spa, 0x3000, asid=2 if case == "other_asid" else 1,
                   immutable=1 if case == "immutable" else 0))
    gpa = 0x4000 if case == "other_gpa" else 0x3000
    assert m.issue("PVALIDATE", asid=1, gpa=gpa, spa=spa).name == "#NPF(RMP)"


def test_pvalidate_sets_and_rescinds_and_reports_no_change():
    """R5: validate sets Validated, rescind clears it; a request that changes nothing sets CF
    (Linux's PVALIDATE_FAIL_NOUPDATE, 255)."""
    m = machine()
    spa = m.page()
    ok(assign(m, spa, 0x9000))
    ok(m.issue("PVALIDATE", asid=1, gpa=0x9000, spa=spa))
    assert m.state(spa) == "GUEST_VALID"
    r = m.issue("PVALIDATE", asid=1, gpa=0x9000, spa=spa)
    assert r.name == "FAIL_NOUPDATE" and r.code == 255
    ok(m.issue("PVALIDATE", asid=1, gpa=0x9000, spa=spa, validate=0))
    assert m.state(spa) == "GUEST_INVALID"
    assert m.issue("PVALIDATE", asid=1, gpa=0x9000, spa=spa, validate=0).name == "FAIL_NOUPDATE"


def test_pvalidate_invalid_input():
    """§2: FAIL_INPUT for a size other than 4K/2M, and (chosen) a 2M request at a GPA that is
    not 2M aligned."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0, size="2M"))
    assert m.issue("PVALIDATE", asid=1, gpa=0, spa=base, pagesize=2).name == "FAIL_INPUT"
    assert m.issue("PVALIDATE", asid=1, gpa=K, spa=base, pagesize="2M").name == "FAIL_INPUT"


# --- RMPADJUST (§2) -----------------------------------------------------------------------------------

def test_rmpadjust_rules():
    """§2 [VERISMO]: only a less privileged VMPL can be given permissions, the page must be
    validated, the permissions a subset of the caller's; sizes behave as PVALIDATE's."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0, size="2M"))
    adj = dict(asid=1, gpa=0, spa=base, pagesize="2M")
    assert m.issue("RMPADJUST", target_vmpl=1, perms=3, **adj).name == "#NPF(RMP)"
    ok(m.issue("PVALIDATE", asid=1, gpa=0, spa=base, pagesize="2M"))
    assert m.issue("RMPADJUST", target_vmpl=0, perms=3, **adj).name == "FAIL_PERMISSION"
    ok(m.issue("RMPADJUST", target_vmpl=1, perms=3, **adj))
    assert m.entry(base)["perms"] == [3, 0, 0]
    # VMPL1 may hand VMPL2 only what it has itself
    assert m.issue("RMPADJUST", vmpl=1, target_vmpl=2, perms=7, **adj).name == "FAIL_PERMISSION"
    ok(m.issue("RMPADJUST", vmpl=1, target_vmpl=2, perms=1, **adj))
    assert m.entry(base)["perms"] == [3, 1, 0]
    assert m.issue("RMPADJUST", asid=1, gpa=K, spa=base + K, target_vmpl=1,
                   perms=1).name == "#NPF(RMP|SIZEM)"
    ok(m.issue("PSMASH", spa=base))
    assert m.issue("RMPADJUST", target_vmpl=1, perms=1, **adj).name == "FAIL_SIZEMISMATCH"
    ok(m.issue("RMPADJUST", asid=1, gpa=K, spa=base + K, target_vmpl=1, perms=1, vmsa=1))
    assert m.entry(base + K)["vmsa"] and m.entry(base + K)["perms"] == [1, 1, 0]


# --- RMPREAD (§2) --------------------------------------------------------------------------------------

def test_rmpread_returns_the_architectural_entry():
    """§2: RMPREAD gives GPA, assigned, page size, immutable and ASID; the host only."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0x600000, asid=9, size="2M", immutable=1))
    r = ok(m.issue("RMPREAD", spa=base))
    assert r.out == {"gpa": 0x600000, "assigned": 1, "pagesize": 1, "hpage_region_status": 0,
                     "immutable": 1, "asid": 9}
    assert m.issue("RMPREAD", spa=base, caller_asid=9).name == "FAIL_PERMISSION"
    assert m.issue("RMPREAD", spa=1 << 40).name == "FAIL_INPUT"


# --- the firmware (§2, §4.4-4.5, R8) ------------------------------------------------------------------

def firmware_page(m):
    spa = m.page()
    ok(m.issue("RMPUPDATE", spa=spa, assigned=1, immutable=1))     # rmp_mark_pages_firmware
    assert m.state(spa) == "FIRMWARE"
    return spa


def launched_guest(m, asid=1):
    gctx = firmware_page(m)
    ok(m.issue("SNP_GCTX_CREATE", gctx=gctx))
    assert m.state(gctx) == "CONTEXT"
    ok(m.issue("SNP_LAUNCH_START", gctx=gctx))
    ok(m.issue("SNP_ACTIVATE", gctx=gctx, asid=asid))
    return gctx


def test_guest_lifecycle_and_its_errors():
    """[K-kvm] order: GCTX_CREATE on a Firmware page, LAUNCH_START, ACTIVATE; an ASID another
    live guest holds is SEV_RET_ASID_OWNED; commands out of order SEV_RET_INVALID_GUEST_STATE;
    DECOMMISSION returns the context page to the Firmware state."""
    m = machine()
    assert m.issue("SNP_GCTX_CREATE", gctx=m.page()).name == "SEV_RET_INVALID_PAGE_STATE"
    gctx = launched_guest(m, asid=1)
    other = firmware_page(m)
    ok(m.issue("SNP_GCTX_CREATE", gctx=other, guest=1))
    assert m.issue("SNP_ACTIVATE", gctx=other, asid=1).name == "SEV_RET_ASID_OWNED"
    assert m.issue("SNP_ACTIVATE", gctx=other, asid=0).name == "SEV_RET_INVALID_ASID"
    assert m.issue("SNP_LAUNCH_FINISH", gctx=other).name == "SEV_RET_INVALID_GUEST_STATE"
    assert m.issue("SNP_LAUNCH_START", gctx=m.page()).name == "SEV_RET_INVALID_GUEST"
    ok(m.issue("SNP_LAUNCH_FINISH", gctx=gctx))
    assert m.issue("SNP_LAUNCH_START", gctx=gctx).name == "SEV_RET_INVALID_GUEST_STATE"
    ok(m.issue("SNP_DECOMMISSION", gctx=gctx))
    assert m.state(gctx) == "FIRMWARE"
    assert m.issue("SNP_LAUNCH_FINISH", gctx=gctx).name == "SEV_RET_INVALID_GUEST"


def test_launch_update_rules():
    """R8, [FW]: the page must be Pre-Guest of the guest's ASID, at the entry's size (VMSA pages
    4K only); it becomes Guest-Valid, a VMSA page with the VMSA bit; after LAUNCH_FINISH no
    more pages can be launched."""
    m = machine()
    gctx = launched_guest(m, asid=1)
    spa = m.page()
    upd = dict(gctx=gctx, spa=spa, gpa=0x1000)
    assert m.issue("SNP_LAUNCH_UPDATE", **upd).name == "SEV_RET_INVALID_PAGE_STATE"
    ok(assign(m, spa, 0x1000, asid=2, immutable=1))
    assert m.issue("SNP_LAUNCH_UPDATE", **upd).name == "SEV_RET_INVALID_PAGE_OWNER"
    ok(m.issue("SNP_PAGE_RECLAIM", spa=spa))
    ok(shared(m, spa))
    ok(assign(m, spa, 0x1000, immutable=1))
    assert m.issue("SNP_LAUNCH_UPDATE", pagesize="2M", **upd).name == "SEV_RET_INVALID_ADDRESS"
    ok(m.issue("SNP_LAUNCH_UPDATE", **upd))
    assert m.state(spa) == "GUEST_VALID" and not m.entry(spa)["immutable"]
    big = m.huge_page()
    ok(assign(m, big, M2, size="2M", immutable=1))
    assert m.issue("SNP_LAUNCH_UPDATE", gctx=gctx, spa=big, gpa=M2).name == \
        "SEV_RET_INVALID_PAGE_SIZE"
    assert m.issue("SNP_LAUNCH_UPDATE", gctx=gctx, spa=big, gpa=M2, pagesize="2M",
                   page_type=2).name == "SEV_RET_INVALID_PAGE_SIZE"        # a 2M VMSA
    ok(m.issue("SNP_LAUNCH_UPDATE", gctx=gctx, spa=big, gpa=M2, pagesize="2M"))
    vmsa = m.page()
    ok(m.issue("RMPUPDATE", spa=vmsa, gpa=0xFFFFFFFFF000, asid=1, assigned=1, immutable=1))
    ok(m.issue("SNP_LAUNCH_UPDATE", gctx=gctx, spa=vmsa, gpa=0xFFFFFFFFF000, page_type=2))
    assert m.entry(vmsa)["vmsa"] and m.entry(vmsa)["gpa"] == 0xFFFFFFFFF000
    ok(m.issue("SNP_LAUNCH_FINISH", gctx=gctx))
    late = m.page()
    ok(assign(m, late, 0x2000, immutable=1))
    assert m.issue("SNP_LAUNCH_UPDATE", gctx=gctx, spa=late,
                   gpa=0x2000).name == "SEV_RET_INVALID_GUEST_STATE"


def test_page_reclaim_rules():
    """[FW]: RECLAIM clears Immutable of a Firmware (-> Reclaim), Pre-Guest (-> Guest-Invalid)
    or Pre-Swap (-> Guest-Valid) page, succeeds at once on a page that is not Immutable, and
    refuses a live guest context, a wrong size and an unaligned 2M page."""
    m = machine()
    fw = firmware_page(m)
    ok(m.issue("SNP_PAGE_RECLAIM", spa=fw))
    assert m.state(fw) == "RECLAIM"
    ok(shared(m, fw))
    pre = m.page()
    ok(assign(m, pre, 0x8000, immutable=1))
    ok(m.issue("SNP_PAGE_RECLAIM", spa=pre))
    assert m.state(pre) == "GUEST_INVALID"
    ok(m.issue("SNP_PAGE_RECLAIM", spa=pre))                   # not Immutable: at once
    gctx = launched_guest(m, asid=3)
    assert m.issue("SNP_PAGE_RECLAIM", spa=gctx).name == "SEV_RET_INVALID_PAGE_STATE"
    big = m.huge_page()
    ok(assign(m, big, 0, size="2M", immutable=1))
    assert m.issue("SNP_PAGE_RECLAIM", spa=big).name == "SEV_RET_INVALID_PAGE_SIZE"
    assert m.issue("SNP_PAGE_RECLAIM", spa=big + K, pagesize="2M").name == \
        "SEV_RET_INVALID_ADDRESS"
    ok(m.issue("SNP_PAGE_RECLAIM", spa=big, pagesize="2M"))
    assert m.state(big) == "GUEST_INVALID"


def test_unsmash_combines_only_firmware_held_pages():
    """§2 [FW snp_mcmd_page_unsmash]: 512 4K entries, Immutable, not VMSA, of one non-zero ASID,
    in one state, consecutive GPAs from a 2M-aligned one, become one 2M entry (sub-page count 0;
    entries 1..511 assigned, ASID 0). Running guest memory (not Immutable) cannot be unsmashed."""
    m = machine()
    base = m.huge_page()
    ok(assign(m, base, 0, size="2M"))
    ok(m.issue("PSMASH", spa=base))
    assert m.issue("SNP_PAGE_UNSMASH", spa=base).name == "SEV_RET_INVALID_PAGE_STATE"
    for i in range(512):
        ok(shared(m, base + i * K))
        ok(assign(m, base + i * K, i * K, immutable=1))
    assert m.issue("SNP_PAGE_UNSMASH", spa=base + K).name == "SEV_RET_INVALID_ADDRESS"
    ok(m.issue("SNP_PAGE_RECLAIM", spa=base + 9 * K))         # one page in another state
    assert m.issue("SNP_PAGE_UNSMASH", spa=base).name == "SEV_RET_INVALID_PAGE_STATE"
    ok(assign(m, base + 9 * K, 9 * K, immutable=1))
    assert m.issue("SNP_PAGE_UNSMASH", spa=base).ok
    assert m.lookup(base + 9 * K) == (True, "2M") and m.state(base) == "PRE_GUEST"
    assert m.entry(base)["subpages"] == 0 and m.entry(base + 9 * K)["asid"] == 0
    assert m.merges() == {"reassign": 0, "unsmash": 1}


def test_calls_are_counted_by_name():
    m = machine()
    spa = m.page()
    assign(m, spa, 0)
    m.issue("PVALIDATE", asid=1, gpa=0, spa=spa)
    m.issue("PVALIDATE", asid=1, gpa=0, spa=spa)
    assert m.calls() == {"RMPUPDATE": 1, "PVALIDATE": 2}
    with pytest.raises(ValueError, match="unknown call"):
        m.issue("RMPUPDATES")
    with pytest.raises(ValueError, match="not gfn"):
        m.issue("PSMASH", spa=0, gfn=1)
