"""The RMP and the calls that change it: the CPU's RMP instructions and the SEV firmware's
commands, as jitted kernels checking the rules of ``reference/snp.md``.

Each call takes its operands as the ABI gives them (system frame numbers for SPAs, guest frame
numbers for GPAs, sizes 0 = 4K and 1 = 2M), changes the RMP the way the hardware or firmware
does, charges its cost to the calling context, counts it (``S.fw_*``; every non-zero outcome in
``V.fail``), emits its probe event and returns the ABI code (``emu_snp.abi``). Outputs go to
``V.out``. The KVM glue (``emu_snp.glue``) and the scripting API (``emu_snp.script``) call these
same kernels, so a sequence tested through the API is the sequence the emulator runs.

The rules and their sources (``snp.md``; **[inferred]** rules are switchable, ``V.opt``):

* RMPUPDATE (§2, R2): host only (an ASID other than 0 gets FAIL_PERMISSION), an Immutable
  entry refuses (FAIL_PERMISSION, [VERISMO]); a 2M update needs a 2M-aligned SPA; a 2M
  assignment over a range with any assigned 4K entry fails FAIL_OVERLAP **[inferred]** from the
  firmware's sub-page counter ([FW]; ``conflict_code`` gives FAIL_INPUT instead, §8.1 open); a
  4K update inside an assigned 2M entry fails FAIL_OVERLAP **[inferred]** (``update_in_2m=smash``
  lets it succeed after an implicit smash, §8.1 open); a change of ASID, GPA, size or assigned
  state, or a new ASID of 0, resets Validated, VMSA and the permissions [VERISMO] (the
  resulting "a reassigned page is unvalidated" is **[inferred]**; ``reassign_validated=keep``);
* PSMASH (§2, R3): host only; a 2M-aligned SPA (FAIL_INPUT); an assigned 2M entry, else
  FAIL_EXPAND (code 7, **[inferred]** condition, §8.2); the 512 entries inherit the 2M entry's
  state with GPA + i, Validated included ([K-host] "preserving the Validated bit"; the other
  fields **[inferred]**, ``psmash_perms=reset`` resets the VMPL permissions);
* PVALIDATE (§2, R5): 2M over a 4K entry is FAIL_SIZEMISMATCH; 4K over a 2M entry, an entry
  not assigned to the guest, a GPA mismatch or an Immutable entry end in a nested page fault
  ([K-kvm], [VERISMO]); an unchanged Validated bit sets CF (FAIL_NOUPDATE); a 2M request at a
  GPA that is not 2M aligned is FAIL_INPUT (chosen);
* RMPADJUST (§2): the target VMPL must be less privileged (FAIL_PERMISSION), the page
  validated ([VERISMO]), the new permissions a subset of the caller's (FAIL_PERMISSION); sizes
  as PVALIDATE;
* RMPREAD (§2): the architectural entry; host only; the 2M region status bit is not computed
  (its meaning is open, §8.4; Linux does not compute it either);
* the firmware's page states and commands (§2, [FW]): SNP_PAGE_RECLAIM, SNP_LAUNCH_UPDATE,
  SNP_PAGE_UNSMASH as [FW] states them; the guest lifecycle commands (GCTX_CREATE,
  LAUNCH_START, ACTIVATE, LAUNCH_FINISH, DECOMMISSION) in KVM's order ([K-kvm]).

The firmware's ``lock`` bit ([FW], bit 63) stands for another CPU or the firmware working on an
entry (chosen encoding): a lock on a 2M-aligned entry is the firmware holding the 2M range, so
RMPUPDATE anywhere in it gets FAIL_OVERLAP (the firmware "briefly locks 2 MB ranges", which
Linux retries, [K-host]) and PSMASH of it FAIL_INUSE (which KVM retries, [K-kvm]); a lock on
another entry gets its RMPUPDATE FAIL_INUSE ([MS-rmpupdate]). Emu sets it only when told to
(the scripting API, the ``busy`` option). Firmware commands are serialised by the host's
``sev_cmd_mutex``, a vendor lock, so commands from different VMs wait for each other.
"""
from emu.jit import kernel
from emu.model import clock

from emu_snp import abi as A
from emu_snp import state as T

P2M = 512
A2M = A.F_ASSIGNED | A.F_2M


# --- entries ----------------------------------------------------------------------------------------

@kernel
def in_host(V, pfn):
    return pfn >= 0 and pfn < V.rmp_flags.shape[0]


@kernel
def is_2m(V, pfn):
    """``pfn`` lies in an assigned 2M entry: the level ``snp_lookup_rmpentry`` reads from the
    2M-aligned entry ([K-host])."""
    return (V.rmp_flags[pfn & ~(P2M - 1)] & A2M) == A2M


@kernel
def assigned(V, pfn):
    """Assigned, read from ``pfn``'s own entry ([K-host])."""
    return (V.rmp_flags[pfn] & A.F_ASSIGNED) != 0


@kernel
def gpa_field(gfn):
    """The stored form of a guest frame number (the VMSA's INITIAL_VMSA_GPA as all ones)."""
    if gfn < 0 or gfn >= A.GFN_VMSA_STORED:
        return A.GFN_VMSA_STORED
    return gfn


@kernel
def _write(V, pfn, flags, asid, gpa, perm):
    V.rmp_flags[pfn] = flags
    V.rmp_asid[pfn] = asid
    V.rmp_gpa[pfn] = gpa
    V.rmp_perm[pfn] = perm


@kernel
def _count_sub(V, pfn, delta):
    """Keep the sub-page count of the 2M-aligned entry: assigned entries 1..511 ([FW])."""
    if (pfn & (P2M - 1)) != 0:
        V.rmp_sub[pfn >> 9] += delta


# --- accounting -------------------------------------------------------------------------------------

@kernel(cold=True)
def _note(V, S, call, code):
    """Count a non-zero outcome by call and code; a failure also in ``S.fw_fail``."""
    slot = A.SLOT_OTHER
    if code >= 0 and code < A.SLOT_NOUPDATE:
        slot = code
    elif code == A.FAIL_NOUPDATE:
        slot = A.SLOT_NOUPDATE
    elif code == A.NPF_RMP:
        slot = A.SLOT_NPF_RMP
    elif code == A.NPF_RMP_SIZEM:
        slot = A.SLOT_NPF_SIZEM
    V.fail[call, slot] += 1
    if code != A.FAIL_NOUPDATE and code != A.NPF_RMP and code != A.NPF_RMP_SIZEM:
        S.fw_fail[call] += 1


@kernel
def account(V, S, ctx, call, cost, code):
    """Charge call ``call`` at cost entry ``cost`` (``V.cost_base`` index) and count it."""
    ns = S.cost[V.cost_base[cost]]
    clock.charge(S, ctx, ns)
    S.fw_count[call] += 1
    S.fw_ns[call] += ns
    if code != 0:
        _note(V, S, call, code)
    return ns


@kernel(cold=True)
def _fw_done(V, S, ctx, vm, call, code, a0, a1):
    """Account a firmware command, run under ``sev_cmd_mutex`` (``__sev_do_cmd_locked``)."""
    clock.lock(S, ctx, T.LOCK_SEV_CMD, 0, True)
    ns = account(V, S, ctx, call, call, code)
    clock.unlock(S, ctx, T.LOCK_SEV_CMD, 0, True)
    clock.emit(S, T.POINT_FW, ctx, vm, -1, call, a0, a1, code, ns, 0)
    return code


# --- RMPUPDATE ----------------------------------------------------------------------------------------

@kernel(cold=True)
def smash(V, h):
    """Turn the assigned 2M entry at ``h`` into 512 4K entries with its state (PSMASH's effect,
    R3): Assigned, ASID, Immutable and Validated copied, GPA + i, the permissions copied or
    reset (``psmash_perms``)."""
    f = V.rmp_flags[h] & (0xFF ^ (A.F_2M | A.F_LOCK | A.F_VMSA))
    asid = V.rmp_asid[h]
    gpa = V.rmp_gpa[h]
    perm = V.rmp_perm[h] if V.opt[T.OPT_PSMASH_PERMS] != 0 else 0
    for i in range(P2M):
        _write(V, h + i, f, asid, gpa + i, perm)
    V.rmp_sub[h >> 9] = P2M - 1


@kernel
def _rmpupdate_check(V, caller_asid, pfn, gfn, asid, assign, size, immutable):
    """The RMPUPDATE rules (R2); returns the code, 0 when the update may go ahead."""
    if caller_asid != 0:
        return A.FAIL_PERMISSION
    if not in_host(V, pfn) or size < 0 or size > 1 or assign < 0 or assign > 1 \
            or immutable < 0 or immutable > 1 or asid < 0 or asid > A.MAX_ASID:
        return A.FAIL_INPUT
    h = pfn & ~(P2M - 1)
    if size == 1 and (pfn != h or (assign == 1 and (gfn & (P2M - 1)) != 0)):
        return A.FAIL_INPUT
    f = V.rmp_flags[pfn]
    if V.rmp_flags[h] & A.F_LOCK:
        return A.FAIL_OVERLAP           # the firmware holds the 2M range ([K-host])
    if f & A.F_LOCK:
        return A.FAIL_INUSE             # another CPU is modifying the entry ([MS-rmpupdate])
    if f & A.F_IMMUTABLE:
        return A.FAIL_PERMISSION
    in2m = (V.rmp_flags[h] & A2M) == A2M
    if size == 0 and in2m and V.opt[T.OPT_SMASH_ON_4K] == 0:
        return A.FAIL_OVERLAP
    if size == 1 and not in2m and ((V.rmp_flags[h] & A.F_ASSIGNED) or V.rmp_sub[h >> 9] != 0):
        return V.opt[T.OPT_CONFLICT_CODE]
    return A.SUCCESS


@kernel
def _new_flags(V, pfn, gpa, asid, assign, size, immutable):
    """The entry's single-bit fields after the update: Validated, VMSA and the permissions
    survive only when nothing of ASID, GPA, size or assigned changed and the ASID is not 0
    ([VERISMO]); ``reassign_validated=keep`` keeps Validated regardless."""
    f = V.rmp_flags[pfn]
    was_2m = (f & A.F_2M) != 0
    same = ((f & A.F_ASSIGNED) != 0) == (assign == 1) and V.rmp_asid[pfn] == asid \
        and V.rmp_gpa[pfn] == gpa and was_2m == (size == 1) and asid != 0
    new = assign | (immutable << 2) | (A.F_2M if size == 1 else 0)
    keep_perm = 0
    if same:
        new |= f & (A.F_VALIDATED | A.F_VMSA)
        keep_perm = 1
    elif V.opt[T.OPT_KEEP_VALIDATED] != 0 and assign == 1:
        new |= f & A.F_VALIDATED
    return new, keep_perm


@kernel(cold=True)
def rmpupdate(V, S, ctx, vm, caller_asid, pfn, gfn, asid, assign, size, immutable):
    """RMPUPDATE: write the entry of ``pfn`` (4K) or the 2M entry at ``pfn`` with the new state
    ``{gpa, assigned, pagesize, immutable, asid}`` ([K-hdr] ``struct rmp_state``)."""
    code = _rmpupdate_check(V, caller_asid, pfn, gfn, asid, assign, size, immutable)
    if code == A.SUCCESS:
        gpa = gpa_field(gfn) if assign == 1 else 0
        h = pfn & ~(P2M - 1)
        if size == 0:
            if (V.rmp_flags[h] & A2M) == A2M:
                smash(V, h)                 # update_in_2m=smash: the hardware splits first
            was = 1 if V.rmp_flags[pfn] & A.F_ASSIGNED else 0
            new, keep_perm = _new_flags(V, pfn, gpa, asid, assign, size, immutable)
            perm = V.rmp_perm[pfn] if keep_perm else 0
            _write(V, pfn, new, asid if assign == 1 else 0, gpa, perm)
            _count_sub(V, pfn, assign - was)
        else:
            new, keep_perm = _new_flags(V, pfn, gpa, asid, assign, size, immutable)
            perm = V.rmp_perm[pfn] if keep_perm else 0
            _write(V, pfn, new, asid if assign == 1 else 0, gpa, perm)
            # entries 1..511 of a 2M page: assigned, ASID 0 ([FW]); all zero when shared
            for i in range(1, P2M):
                _write(V, pfn + i, assign, 0, 0, 0)
            V.rmp_sub[pfn >> 9] = (P2M - 1) if assign == 1 else 0
    cost = T.XC_RMPUPDATE_2M if size == 1 else A.FW_RMPUPDATE
    ns = account(V, S, ctx, A.FW_RMPUPDATE, cost, code)
    clock.emit(S, T.POINT_RMPUPDATE, ctx, vm, -1, pfn, gfn, asid,
               assign | (size << 1) | (immutable << 2), code, ns)
    return code


# --- PSMASH -------------------------------------------------------------------------------------------

@kernel(cold=True)
def psmash(V, S, ctx, vm, caller_asid, pfn):
    """PSMASH: expand the 2M entry at ``pfn`` into 512 4K entries (R3)."""
    code = A.SUCCESS
    if caller_asid != 0:
        code = A.FAIL_PERMISSION
    elif not in_host(V, pfn) or (pfn & (P2M - 1)) != 0:
        code = A.FAIL_INPUT
    elif V.rmp_flags[pfn] & A.F_LOCK:
        code = A.FAIL_INUSE
    elif (V.rmp_flags[pfn] & A2M) != A2M:
        code = A.FAIL_EXPAND
    else:
        smash(V, pfn)
    ns = account(V, S, ctx, A.FW_PSMASH, A.FW_PSMASH, code)
    clock.emit(S, T.POINT_PSMASH, ctx, vm, -1, pfn, code, ns, 0, 0, 0)
    return code


# --- PVALIDATE and RMPADJUST (the guest) ---------------------------------------------------------------

@kernel
def _guest_entry(V, asid, gfn, pfn, size):
    """The entry a guest instruction at ``size`` acts on, or the code it ends with.

    Returns ``(entry, code)``: 4K on a 2M entry is an #NPF(RMP|SIZEM); an entry not assigned to
    ``asid`` at ``gfn``, or Immutable, an #NPF(RMP); 2M on 4K entries FAIL_SIZEMISMATCH (R5).
    """
    if not in_host(V, pfn):
        return -1, A.NPF_RMP
    h = pfn & ~(P2M - 1)
    if size == 0:
        if (V.rmp_flags[h] & A2M) == A2M:
            return -1, A.NPF_RMP_SIZEM
        e = pfn
    else:
        if pfn != h:
            return -1, A.FAIL_SIZEMISMATCH
        e = h
    f = V.rmp_flags[e]
    if (f & A.F_ASSIGNED) == 0 or (f & A.F_IMMUTABLE) != 0 or V.rmp_asid[e] != asid \
            or V.rmp_gpa[e] != gpa_field(gfn):
        return -1, A.NPF_RMP
    if size == 1 and (f & A.F_2M) == 0:
        return -1, A.FAIL_SIZEMISMATCH
    return e, A.SUCCESS


@kernel
def pvalidate(V, S, ctx, vm, asid, gfn, pfn, size, validate):
    """PVALIDATE by the guest with ``asid`` at VMPL0: set (``validate`` 1) or rescind (0) the
    Validated bit of the page at ``gfn``, which its NPT maps to ``pfn`` (R5)."""
    code = A.SUCCESS
    if size < 0 or size > 1 or validate < 0 or validate > 1 \
            or (size == 1 and (gfn & (P2M - 1)) != 0):
        code = A.FAIL_INPUT
    else:
        e, code = _guest_entry(V, asid, gfn, pfn, size)
        if code == A.SUCCESS:
            f = V.rmp_flags[e]
            if ((f & A.F_VALIDATED) != 0) == (validate == 1):
                code = A.FAIL_NOUPDATE
            elif validate == 1:
                V.rmp_flags[e] = f | A.F_VALIDATED
            else:
                V.rmp_flags[e] = f & (0xFF ^ A.F_VALIDATED)
    cost = T.XC_PVALIDATE_2M if size == 1 and code == A.SUCCESS else A.FW_PVALIDATE
    ns = account(V, S, ctx, A.FW_PVALIDATE, cost, code)
    clock.emit(S, T.POINT_PVALIDATE, ctx, vm, -1, gfn, size, validate, code, ns, 0)
    return code


@kernel(cold=True)
def rmpadjust(V, S, ctx, vm, asid, vmpl, gfn, pfn, size, target, perms, vmsa):
    """RMPADJUST by the guest at ``vmpl``: give VMPL ``target`` the permissions ``perms`` (and
    the VMSA bit) on the page at ``gfn`` (§2, [VERISMO])."""
    code = A.SUCCESS
    if size < 0 or size > 1 or target < 0 or target > 3 or vmpl < 0 or vmpl > 3 \
            or perms < 0 or perms > A.PERM_ALL or vmsa < 0 or vmsa > 1 \
            or (size == 1 and ((gfn & (P2M - 1)) != 0 or vmsa == 1)):
        code = A.FAIL_INPUT
    elif target <= vmpl:
        code = A.FAIL_PERMISSION
    else:
        e, code = _guest_entry(V, asid, gfn, pfn, size)
        if code == A.SUCCESS:
            if (V.rmp_flags[e] & A.F_VALIDATED) == 0:
                code = A.NPF_RMP
            else:
                own = A.PERM_ALL
                if vmpl > 0:
                    own = (V.rmp_perm[e] >> ((vmpl - 1) * A.PERM_BITS)) & A.PERM_ALL
                if perms & (A.PERM_ALL ^ own):
                    code = A.FAIL_PERMISSION
        if code == A.SUCCESS:
            shift = (target - 1) * A.PERM_BITS
            p = V.rmp_perm[e] & (0xFFFF ^ (A.PERM_ALL << shift))
            V.rmp_perm[e] = p | (perms << shift)
            if vmsa == 1:
                V.rmp_flags[e] = V.rmp_flags[e] | A.F_VMSA
            else:
                V.rmp_flags[e] = V.rmp_flags[e] & (0xFF ^ A.F_VMSA)
    ns = account(V, S, ctx, A.FW_RMPADJUST, A.FW_RMPADJUST, code)
    clock.emit(S, T.POINT_RMPADJUST, ctx, vm, -1, gfn, size, target, code, ns, 0)
    return code


@kernel(cold=True)
def rmpread(V, S, ctx, caller_asid, pfn):
    """RMPREAD: the architectural 16-byte entry in ``V.out``: GPA (bytes), assigned, page size,
    2M region status (0: not computed), immutable, ASID ([K-host] ``struct rmpentry``)."""
    code = A.SUCCESS
    if caller_asid != 0:
        code = A.FAIL_PERMISSION
    elif not in_host(V, pfn):
        code = A.FAIL_INPUT
    else:
        f = V.rmp_flags[pfn]
        g = V.rmp_gpa[pfn]
        V.out[0] = (A.VMSA_GFN if g == A.GFN_VMSA_STORED else g) << 12
        V.out[1] = 1 if f & A.F_ASSIGNED else 0
        V.out[2] = 1 if f & A.F_2M else 0
        V.out[3] = 0
        V.out[4] = 1 if f & A.F_IMMUTABLE else 0
        V.out[5] = V.rmp_asid[pfn]
    ns = account(V, S, ctx, A.FW_RMPREAD, A.FW_RMPREAD, code)
    clock.emit(S, T.POINT_RMPREAD, ctx, -1, -1, pfn, code, ns, 0, 0, 0)
    return code


# --- the firmware: page states ------------------------------------------------------------------------

@kernel
def _is_firmware(V, pfn):
    """The FIRMWARE state: assigned, immutable, ASID 0, not validated, not VMSA ([FW])."""
    f = V.rmp_flags[pfn] & (0xFF ^ (A.F_LOCK | A.F_2M))
    return f == (A.F_ASSIGNED | A.F_IMMUTABLE) and V.rmp_asid[pfn] == 0


@kernel(cold=True)
def page_reclaim(V, S, ctx, pfn, size):
    """SNP_PAGE_RECLAIM (0xC7): clear Immutable on a Firmware, Metadata, Pre-Guest or Pre-Swap
    page; its size must be the entry's; success at once if it is not Immutable ([FW])."""
    code = A.SEV_SUCCESS
    if not in_host(V, pfn) or (size == 1 and (pfn & (P2M - 1)) != 0):
        code = A.SEV_INVALID_ADDRESS
    elif size < 0 or size > 1:
        code = A.SEV_INVALID_PARAM
    else:
        f = V.rmp_flags[pfn]
        entry_size = 1 if (f & A2M) == A2M else 0
        if (f & A.F_ASSIGNED) and entry_size != size:
            code = A.SEV_INVALID_PAGE_SIZE
        elif (f & A.F_IMMUTABLE) == 0:
            code = A.SEV_SUCCESS
        elif (f & A.F_ASSIGNED) == 0 or (V.rmp_asid[pfn] == 0 and (f & A.F_VMSA)):
            code = A.SEV_INVALID_PAGE_STATE        # HV_FIXED, or a live guest context
        else:
            V.rmp_flags[pfn] = f & (0xFF ^ A.F_IMMUTABLE)
    return _fw_done(V, S, ctx, -1, A.FW_RECLAIM, code, pfn, size)


@kernel
def reclaim_refused(V, S, ctx, pfn):
    """SNP_PAGE_RECLAIM failing in the firmware (the ``reclaim_fail`` fault injection): a
    hardware error, the entry unchanged."""
    return _fw_done(V, S, ctx, -1, A.FW_RECLAIM, A.SEV_HWSEV_RET_PLATFORM, pfn, 0)


@kernel(cold=True)
def page_unsmash(V, S, ctx, pfn):
    """SNP_PAGE_UNSMASH (0xC8): combine 512 4K entries into one 2M entry. All must be 4K,
    Immutable, not VMSA, of one non-zero ASID, in one state with one set of permissions, with
    consecutive GPAs from a 2M-aligned one ([FW] ``snp_mcmd_page_unsmash``)."""
    code = A.SEV_SUCCESS
    if not in_host(V, pfn) or (pfn & (P2M - 1)) != 0:
        code = A.SEV_INVALID_ADDRESS
    else:
        f0 = V.rmp_flags[pfn]
        asid = V.rmp_asid[pfn]
        gpa = V.rmp_gpa[pfn]
        perm = V.rmp_perm[pfn]
        want = f0 & (A.F_ASSIGNED | A.F_IMMUTABLE | A.F_VALIDATED | A.F_VMSA | A.F_2M)
        if want != (A.F_ASSIGNED | A.F_IMMUTABLE) and \
                want != (A.F_ASSIGNED | A.F_IMMUTABLE | A.F_VALIDATED):
            code = A.SEV_INVALID_PAGE_STATE
        elif asid == 0 or (gpa & (P2M - 1)) != 0 or gpa == A.GFN_VMSA_STORED:
            code = A.SEV_INVALID_PAGE_STATE
        else:
            for i in range(1, P2M):
                f = V.rmp_flags[pfn + i]
                if (f & (A.F_ASSIGNED | A.F_IMMUTABLE | A.F_VALIDATED | A.F_VMSA | A.F_2M)) \
                        != want or V.rmp_asid[pfn + i] != asid \
                        or V.rmp_gpa[pfn + i] != gpa + i or V.rmp_perm[pfn + i] != perm:
                    code = A.SEV_INVALID_PAGE_STATE
                    break
    if code == A.SEV_SUCCESS:
        V.rmp_flags[pfn] = V.rmp_flags[pfn] | A.F_2M
        for i in range(1, P2M):
            _write(V, pfn + i, A.F_ASSIGNED, 0, 0, 0)
        V.rmp_sub[pfn >> 9] = 0                     # [FW]: the 2M entry's count is 0
        V.merge[T.MERGE_UNSMASH] += 1
    return _fw_done(V, S, ctx, -1, A.FW_UNSMASH, code, pfn, 0)


# --- the firmware: guests -------------------------------------------------------------------------------

@kernel(cold=True)
def guest_of(V, gctx):
    """The slot whose guest context page is ``gctx``, or -1."""
    for s in range(V.vm_gctx.shape[0]):
        if V.vm_gctx[s] == gctx and V.g_state[s] != T.G_NONE:
            return s
    return -1


@kernel(cold=True)
def gctx_create(V, S, ctx, slot, gctx):
    """SNP_GCTX_CREATE: a guest context in ``gctx``, a page in the Firmware state, which
    becomes the Context state (the page-state table of §2)."""
    code = A.SEV_SUCCESS
    if slot < 0 or slot >= V.g_state.shape[0] or V.g_state[slot] != T.G_NONE:
        code = A.SEV_INVALID_GUEST
    elif not in_host(V, gctx):
        code = A.SEV_INVALID_ADDRESS
    elif not _is_firmware(V, gctx):
        code = A.SEV_INVALID_PAGE_STATE
    else:
        V.rmp_flags[gctx] = V.rmp_flags[gctx] | A.F_VMSA
        V.g_state[slot] = T.G_INIT
        V.g_asid[slot] = 0
        V.vm_gctx[slot] = gctx
    return _fw_done(V, S, ctx, slot, A.FW_GCTX_CREATE, code, gctx, slot)


@kernel(cold=True)
def launch_start(V, S, ctx, gctx):
    """SNP_LAUNCH_START: the guest's launch begins (KVM issues it right after GCTX_CREATE)."""
    s = guest_of(V, gctx)
    code = A.SEV_SUCCESS
    if s < 0:
        code = A.SEV_INVALID_GUEST
    elif V.g_state[s] != T.G_INIT:
        code = A.SEV_INVALID_GUEST_STATE
    else:
        V.g_state[s] = T.G_LAUNCH
    return _fw_done(V, S, ctx, s, A.FW_LAUNCH_START, code, gctx, 0)


@kernel(cold=True)
def activate(V, S, ctx, gctx, asid):
    """SNP_ACTIVATE: bind ``asid`` to the guest (``snp_bind_asid``); an ASID another live guest
    holds is SEV_RET_ASID_OWNED."""
    s = guest_of(V, gctx)
    code = A.SEV_SUCCESS
    if s < 0:
        code = A.SEV_INVALID_GUEST
    elif asid < 1 or asid > A.MAX_ASID:
        code = A.SEV_INVALID_ASID
    elif V.g_asid[s] != 0 or V.g_state[s] == T.G_RUNNING:
        code = A.SEV_INVALID_GUEST_STATE
    else:
        for o in range(V.g_asid.shape[0]):
            if o != s and V.g_state[o] != T.G_NONE and V.g_asid[o] == asid:
                code = A.SEV_ASID_OWNED
                break
    if code == A.SEV_SUCCESS:
        V.g_asid[s] = asid
    return _fw_done(V, S, ctx, s, A.FW_ACTIVATE, code, gctx, asid)


@kernel(cold=True)
def launch_update(V, S, ctx, gctx, pfn, gfn, size, ptype):
    """SNP_LAUNCH_UPDATE: measure and encrypt a Pre-Guest page of the guest's ASID, which
    becomes Guest-Valid. The size must be the entry's, a 2M page 2M aligned; VMSA, secrets and
    CPUID pages must be 4K ([FW])."""
    s = guest_of(V, gctx)
    code = A.SEV_SUCCESS
    if s < 0:
        code = A.SEV_INVALID_GUEST
    elif V.g_state[s] != T.G_LAUNCH or V.g_asid[s] == 0:
        code = A.SEV_INVALID_GUEST_STATE
    elif ptype < A.PAGE_NORMAL or ptype > A.PAGE_CPUID or size < 0 or size > 1:
        code = A.SEV_INVALID_PARAM
    elif not in_host(V, pfn) or (size == 1 and (pfn & (P2M - 1)) != 0):
        code = A.SEV_INVALID_ADDRESS
    elif size == 1 and (ptype == A.PAGE_VMSA or ptype == A.PAGE_SECRETS
                        or ptype == A.PAGE_CPUID):
        code = A.SEV_INVALID_PAGE_SIZE
    else:
        f = V.rmp_flags[pfn]
        if (f & (A.F_ASSIGNED | A.F_IMMUTABLE | A.F_VALIDATED)) \
                != (A.F_ASSIGNED | A.F_IMMUTABLE) or V.rmp_asid[pfn] == 0:
            code = A.SEV_INVALID_PAGE_STATE
        elif V.rmp_asid[pfn] != V.g_asid[s]:
            code = A.SEV_INVALID_PAGE_OWNER
        elif (1 if (f & A2M) == A2M else 0) != size:
            code = A.SEV_INVALID_PAGE_SIZE
        elif V.rmp_gpa[pfn] != gpa_field(gfn):
            code = A.SEV_INVALID_PARAM
    if code == A.SEV_SUCCESS:
        f = (V.rmp_flags[pfn] & (0xFF ^ A.F_IMMUTABLE)) | A.F_VALIDATED
        if ptype == A.PAGE_VMSA:
            f |= A.F_VMSA
        V.rmp_flags[pfn] = f
    return _fw_done(V, S, ctx, s, A.FW_LAUNCH_UPDATE, code, pfn, ptype)


@kernel(cold=True)
def launch_finish(V, S, ctx, gctx):
    """SNP_LAUNCH_FINISH: the launch is over, the guest may run."""
    s = guest_of(V, gctx)
    code = A.SEV_SUCCESS
    if s < 0:
        code = A.SEV_INVALID_GUEST
    elif V.g_state[s] != T.G_LAUNCH or V.g_asid[s] == 0:
        code = A.SEV_INVALID_GUEST_STATE
    else:
        V.g_state[s] = T.G_RUNNING
    return _fw_done(V, S, ctx, s, A.FW_LAUNCH_FINISH, code, gctx, 0)


@kernel(cold=True)
def decommission(V, S, ctx, gctx):
    """SNP_DECOMMISSION: the guest is gone; its context page is back in the Firmware state,
    to be reclaimed before the host may have it (§4.5)."""
    s = guest_of(V, gctx)
    code = A.SEV_SUCCESS
    if s < 0:
        code = A.SEV_INVALID_GUEST
    else:
        V.rmp_flags[gctx] = V.rmp_flags[gctx] & (0xFF ^ A.F_VMSA)
        V.g_state[s] = T.G_NONE
        V.g_asid[s] = 0
    return _fw_done(V, S, ctx, s, A.FW_DECOMMISSION, code, gctx, 0)
