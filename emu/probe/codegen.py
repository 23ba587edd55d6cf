"""Write a checked probe program as a jitted consumer of the probe ring.

The kernels write an event to the ring only at points a program is attached to; the ring is
handed to the program's ``consume`` whenever it fills and after every batch
(:mod:`emu.model.probe_call`). ``consume`` is generated Python, compiled by numba as a C
callback: a loop over the events that dispatches on the point id to one small jitted function
per action block. Maps, their keys and the output buffer live in one int64 array ``D``
(:class:`DataLayout`); nothing allocates, nothing calls Python.

The source is written to ``<cache>/gen/probe_<hash>.py`` (the hash covers the source, which
embeds the fingerprint of the runtime it imports) and cached by numba like the driver, so a
script seen before loads without compiling. ``emu run --emit-probe-source`` prints it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from emu.probe import ast as A
from emu.probe import runtime as rt
from emu.probe.verifier import Checked, CheckedBlock, MapInfo

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: words of the output buffer (8 MiB): printf/print records between two drains
OUT_WORDS = 1 << 20
RING_COLS = 11          # emu.model.state.EV_COLS
EV_TIME, EV_POINT, EV_CTX, EV_VM, EV_VCPU, EV_ARGS = 0, 1, 2, 3, 4, 5


@dataclass
class MapLayout:
    info: MapInfo
    base: int               # D[base] = live keys, D[base + 1] = dropped updates
    cap: int                # slots (a power of two; 1 for a map without keys)
    row: int                # words per slot: state, keys, values

    @property
    def nkeys(self) -> int:
        return len(self.info.key_types)

    @property
    def words(self) -> int:
        return 2 + self.cap * self.row


@dataclass
class DataLayout:
    """Where everything lives in the program's int64 memory ``D``."""

    maps: dict[str, MapLayout] = field(default_factory=dict)
    interval_slots: list[int] = field(default_factory=list)
    out_base: int = 0
    out_cap: int = OUT_WORDS

    @property
    def size(self) -> int:
        return self.out_base + self.out_cap

    @classmethod
    def of(cls, checked: Checked, out_words: int = OUT_WORDS) -> "DataLayout":
        lay = cls(out_cap=out_words)
        pos = rt.HEADER
        for _ in checked.intervals:
            lay.interval_slots.append(pos)
            pos += 1
        for name in sorted(checked.maps):
            m = checked.maps[name]
            cap = 1 if not m.key_types else _pow2(2 * m.max_keys)
            ml = MapLayout(m, pos, cap, 1 + len(m.key_types) + m.width)
            lay.maps[name] = ml
            pos += ml.words
        lay.out_base = pos
        return lay


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def _lit(v: int) -> str:
    v = int(v)
    if v > INT64_MAX:            # a 64-bit unsigned literal, as C would wrap it
        v -= 1 << 64
    return str(v)


class _Writer:
    def __init__(self):
        self.lines: list[str] = []

    def add(self, indent: int, text: str = "") -> None:
        self.lines.append(("    " * indent + text) if text else "")

    def function(self, decorator: str, signature: str, doc: str) -> None:
        """Start a top-level function, two blank lines after what came before."""
        self.lines += ["", "", decorator, f"def {signature}:", f'    """{doc}"""']


def generate(checked: Checked, layout: DataLayout, runtime_fingerprint: str) -> str:
    """The consumer module's source for ``checked`` laid out as ``layout``."""
    return _Gen(checked, layout).module(runtime_fingerprint)


class _Gen:
    def __init__(self, checked: Checked, layout: DataLayout):
        self.c = checked
        self.lay = layout
        self.w = _Writer()
        self.tmp = 0

    # --- module ---------------------------------------------------------------------------------
    def module(self, fingerprint: str) -> str:
        w = self.w
        w.add(0, '"""emu probe program (generated from a probe script; emu rewrites it)."""')
        w.add(0, f"# runtime fingerprint: {fingerprint}")
        w.add(0, "from numba import cfunc, njit, types")
        w.add(0, "from emu.probe import runtime as rt")
        w.add(0, "from emu.probe.runtime import int64_ptr")
        w.add(0)
        w.add(0, "_SIG = types.int64(types.int64, types.int64, types.int64)")
        w.add(0, "_JIT = dict(_nrt=False, cache=True, forceinline=True)")
        for name in sorted(self.lay.maps):
            self._map_functions(self.lay.maps[name])
        self._program()
        return "\n".join(w.lines) + "\n"

    def _map_functions(self, ml: MapLayout) -> None:
        """``_find_<map>(D, keys..., create)``: the row of a key, created on demand, or -1."""
        w = self.w
        m = ml.info
        fn = self._find_name(m.name)
        keys = [f"k{i}" for i in range(ml.nkeys)]
        init = INT64_MAX if m.kind == "min" else INT64_MIN if m.kind == "max" else 0
        w.function("@njit(**_JIT)", f"{fn}(D, {''.join(k + ', ' for k in keys)}create)",
                   f"Row of {m.name}[{', '.join(keys)}] ({m.kind}), or -1.")
        base = ml.base
        if not keys:
            w.add(1, f"r = {base + 2}")
            w.add(1, f"if D[r] == {rt.ROW_LIVE}:")
            w.add(2, "return r")
            w.add(1, "if create == 0:")
            w.add(2, "return -1")
            w.add(1, f"D[r] = {rt.ROW_LIVE}")
            self._init_values(1, 1, m.width, init)
            w.add(1, f"D[{base}] = 1")
            w.add(1, "return r")
            return
        h = "0"
        for k in keys:
            h = f"rt.mix({h}, {k})"
        w.add(1, f"i = {h} & {ml.cap - 1}")
        w.add(1, "spare = -1")
        w.add(1, "free = -1")
        w.add(1, f"for _ in range({ml.cap}):")
        w.add(2, f"r = {base + 2} + i * {ml.row}")
        w.add(2, "s = D[r]")
        match = " and ".join(f"D[r + {1 + j}] == {k}" for j, k in enumerate(keys))
        w.add(2, f"if s == {rt.ROW_LIVE} and {match}:")
        w.add(3, "return r")
        w.add(2, f"if s == {rt.ROW_EMPTY}:")
        w.add(3, "free = r")
        w.add(3, "break")
        w.add(2, f"if spare < 0 and s == {rt.ROW_DELETED}:")
        w.add(3, "spare = r")
        w.add(2, f"i = (i + 1) & {ml.cap - 1}")
        w.add(1, "if create == 0:")
        w.add(2, "return -1")
        w.add(1, "r = spare if spare >= 0 else free")
        w.add(1, f"if r < 0 or D[{base}] >= {m.max_keys}:")
        w.add(2, f"D[{base + 1}] += 1")
        w.add(2, "return -1")
        w.add(1, f"D[r] = {rt.ROW_LIVE}")
        for j, k in enumerate(keys):
            w.add(1, f"D[r + {1 + j}] = {k}")
        self._init_values(1, 1 + ml.nkeys, m.width, init)
        w.add(1, f"D[{base}] += 1")
        w.add(1, "return r")

    def _init_values(self, ind: int, first: int, width: int, init: int) -> None:
        if width <= 2:
            for j in range(width):
                self.w.add(ind, f"D[r + {first + j}] = {_lit(init)}")
            return
        self.w.add(ind, f"for j in range({width}):")
        self.w.add(ind + 1, f"D[r + {first} + j] = {_lit(init)}")

    @staticmethod
    def _find_name(map_name: str) -> str:
        return "_find_" + ("anon" if map_name == "@" else "m_" + map_name[1:])

    # --- blocks ---------------------------------------------------------------------------------
    def _block(self, i: int, b: CheckedBlock, ind: int, time: str = "t",
               probe: str = "p") -> None:
        """Block ``i`` written inline at indent ``ind``; the variables ``time`` and ``probe``
        hold its ``nsecs`` and ``probe``."""
        w = self.w
        self.block = b
        self.block_index = i
        self.time = time
        self.probe = probe
        probes = ", ".join(self.c.catalog.points[p].name for p in b.points) or b.name
        w.add(ind, f"# line {b.pos[0]}: {probes}")
        for name in sorted(b.vars):
            w.add(ind, f"{self._var(name)} = 0")
        if b.predicate is not None:
            w.add(ind, f"if {self.expr(b.predicate)} != 0:")
            ind += 1
        self.stmts(b.body, ind)

    def _var(self, name: str) -> str:
        return f"v{self.block_index}_{name[1:]}"

    def stmts(self, stmts, ind: int) -> None:
        if not stmts:
            self.w.add(ind, "pass")
        for s in stmts:
            self.stmt(s, ind)

    def stmt(self, s: A.Stmt, ind: int) -> None:
        w = self.w
        if isinstance(s, A.MapAssign):
            self._map_assign(s, ind)
        elif isinstance(s, A.VarAssign):
            if s.value is None:
                w.add(ind, f"{self._var(s.name)} = 0")
            elif s.op == "=":
                w.add(ind, f"{self._var(s.name)} = {self.expr(s.value)}")
            else:
                var = self._var(s.name)
                w.add(ind, f"{var} = {self._compound(s.op, var, self.expr(s.value))}")
        elif isinstance(s, A.IncDec):
            if isinstance(s.target, A.MapRef):
                r = self._row(s.target, ind, create=True)
                w.add(ind, f"if {r} >= 0:")
                w.add(ind + 1, f"D[{r} + {self._voff(s.target)}] += {s.delta}")
            else:
                w.add(ind, f"{self._var(s.target.name)} += {s.delta}")
        elif isinstance(s, A.If):
            w.add(ind, f"if {self.expr(s.test)} != 0:")
            self.stmts(s.then, ind + 1)
            if s.other:
                w.add(ind, "else:")
                self.stmts(s.other, ind + 1)
        elif isinstance(s, A.CallStmt):
            self._call(s.call, ind)

    def _row(self, ref: A.MapRef, ind: int, create: bool) -> str:
        keys = [self.expr(k) for k in ref.keys]
        r = self._fresh("r")
        args = "".join(k + ", " for k in keys)
        self.w.add(ind, f"{r} = {self._find_name(ref.name)}(D, {args}{1 if create else 0})")
        return r

    def _voff(self, ref: A.MapRef) -> int:
        return 1 + self.lay.maps[ref.name].nkeys

    def _map_assign(self, s: A.MapAssign, ind: int) -> None:
        w = self.w
        m = self.lay.maps[s.target.name].info
        v = s.value
        if m.kind in ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist"):
            x = self._fresh("x")
            if v.args:
                w.add(ind, f"{x} = {self.expr(v.args[0])}")
            r = self._row(s.target, ind, create=True)
            o = self._voff(s.target)
            w.add(ind, f"if {r} >= 0:")
            ind += 1
            slot = f"D[{r} + {o}]"
            if m.kind == "count":
                w.add(ind, f"{slot} += 1")
            elif m.kind == "sum":
                w.add(ind, f"{slot} += {x}")
            elif m.kind == "min":
                w.add(ind, f"if {x} < {slot}:")
                w.add(ind + 1, f"{slot} = {x}")
            elif m.kind == "max":
                w.add(ind, f"if {x} > {slot}:")
                w.add(ind + 1, f"{slot} = {x}")
            elif m.kind in ("avg", "stats"):
                w.add(ind, f"{slot} += 1")
                w.add(ind, f"D[{r} + {o + 1}] += {x}")
            elif m.kind == "hist":
                w.add(ind, f"D[{r} + {o} + rt.hist_index({x}, {m.hist_bits or 0})] += 1")
            else:
                lo, hi, step = m.lhist
                w.add(ind, f"D[{r} + {o} + rt.lhist_index({x}, {lo}, {hi}, {step})] += 1")
            return
        value = self.expr(v)
        x = self._fresh("x")
        w.add(ind, f"{x} = {value}")
        r = self._row(s.target, ind, create=True)
        slot = f"D[{r} + {self._voff(s.target)}]"
        w.add(ind, f"if {r} >= 0:")
        if s.op == "=":
            w.add(ind + 1, f"{slot} = {x}")
        else:
            w.add(ind + 1, f"{slot} = {self._compound(s.op, slot, x)}")

    def _compound(self, op: str, target: str, value: str) -> str:
        return self._binop(op[:-1], target, value)

    def _call(self, c: A.Call, ind: int) -> None:
        w = self.w
        name = c.name
        if name == "printf":
            args = [self._printf_arg(a) for a in c.args[1:]]
            o = self._fresh("o")
            w.add(ind, f"{o} = rt.out_reserve(D, {4 + len(args)})")
            w.add(ind, f"if {o} >= 0:")
            w.add(ind + 1, f"D[{o}] = {rt.REC_PRINTF}")
            w.add(ind + 1, f"D[{o} + 1] = {c.format_id}")
            w.add(ind + 1, f"D[{o} + 2] = {self.time}")
            w.add(ind + 1, f"D[{o} + 3] = {len(args)}")
            for i, a in enumerate(args):
                w.add(ind + 1, f"D[{o} + {4 + i}] = {a}")
        elif name == "print":
            target = c.args[0]
            if isinstance(target, A.MapRef) and not target.keys:
                ml = self.lay.maps[target.name]
                top = c.args[1].value if len(c.args) > 1 else 0
                div = c.args[2].value if len(c.args) > 2 else 1
                w.add(ind, f"rt.out_map(D, {ml.info.id}, {ml.base}, {ml.cap}, {ml.row}, "
                           f"{top}, {div}, {self.time})")
            else:
                o = self._fresh("o")
                value = self._printf_arg(target)
                w.add(ind, f"{o} = rt.out_reserve(D, 4)")
                w.add(ind, f"if {o} >= 0:")
                w.add(ind + 1, f"D[{o}] = {rt.REC_PRINT_VALUE}")
                w.add(ind + 1, f"D[{o} + 1] = {target.print_id}")
                w.add(ind + 1, f"D[{o} + 2] = {self.time}")
                w.add(ind + 1, f"D[{o} + 3] = {value}")
        elif name == "clear":
            ml = self.lay.maps[c.args[0].name]
            w.add(ind, f"rt.map_clear(D, {ml.base}, {ml.cap}, {ml.row})")
        elif name == "zero":
            ml = self.lay.maps[c.args[0].name]
            w.add(ind, f"rt.map_zero(D, {ml.base}, {ml.cap}, {ml.row}, {ml.nkeys})")
        elif name == "delete":
            ref = c.delete_ref
            r = self._row(ref, ind, create=False)
            w.add(ind, f"if {r} >= 0:")
            w.add(ind + 1, f"D[{r}] = {rt.ROW_DELETED}")
            w.add(ind + 1, f"D[{self.lay.maps[ref.name].base}] -= 1")
        elif name == "exit":
            w.add(ind, f"D[{rt.H_EXIT}] = 1")
            w.add(ind, "return 1")

    def _printf_arg(self, a: A.Expr) -> str:
        if isinstance(a, A.Str):
            return str(self.c.catalog.names.intern("string", a.value))
        return self.expr(a)

    # --- expressions ----------------------------------------------------------------------------
    def expr(self, e: A.Expr) -> str:
        if isinstance(e, A.Int):
            return _lit(e.value)
        if isinstance(e, A.Str):
            resolved = getattr(e, "resolved", None)
            if resolved is not None:
                return str(resolved)
            return str(getattr(e, "value_id", self.c.catalog.names.intern("string", e.value)))
        if isinstance(e, A.Var):
            return self._var(e.name)
        if isinstance(e, A.MapRef):
            keys = "".join(self.expr(k) + ", " for k in e.keys)
            fn = self._find_name(e.name)
            return f"_value(D, {fn}(D, {keys}0), {self._voff(e)})"
        if isinstance(e, A.Ident):
            return self._builtin(e.name)
        if isinstance(e, A.Field):
            return self._field(e)
        if isinstance(e, A.Call):          # has_key
            ref = e.has_ref
            keys = "".join(self.expr(k) + ", " for k in ref.keys)
            return f"(1 if {self._find_name(ref.name)}(D, {keys}0) >= 0 else 0)"
        if isinstance(e, A.Unary):
            x = self.expr(e.operand)
            if e.op == "!":
                return f"(1 if {x} == 0 else 0)"
            return f"({e.op}{x})"
        if isinstance(e, A.Binary):
            return self._binop(e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, A.Cond):
            return f"({self.expr(e.then)} if {self.expr(e.test)} != 0 else {self.expr(e.other)})"
        raise AssertionError(type(e))

    @staticmethod
    def _binop(op: str, a: str, b: str) -> str:
        if op in ("+", "-", "*", "&", "|", "^"):
            return f"({a} {op} {b})"
        if op in ("<", "<=", ">", ">=", "==", "!="):
            return f"(1 if {a} {op} {b} else 0)"
        if op == "&&":
            return f"(1 if ({a} != 0 and {b} != 0) else 0)"
        if op == "||":
            return f"(1 if ({a} != 0 or {b} != 0) else 0)"
        fn = {"/": "rt.div", "%": "rt.mod", "<<": "rt.shl", ">>": "rt.shr"}[op]
        return f"{fn}({a}, {b})"

    def _builtin(self, name: str) -> str:
        b = self.block
        if name in ("nsecs", "elapsed"):
            return self.time
        if name == "probe":
            return self.probe
        if b.kind != "event":
            return "-1"
        if name in ("tid", "ctx"):
            return f"R[e + {EV_CTX}]"
        if name == "vm":
            return f"R[e + {EV_VM}]"
        if name == "vcpu":
            return f"R[e + {EV_VCPU}]"
        if name.startswith("arg"):
            return f"R[e + {EV_ARGS + int(name[3:])}]"
        raise AssertionError(name)

    def _field(self, e: A.Field) -> str:
        slots = self.block.field_slots[e.name]
        distinct = sorted(set(slots.values()))
        if len(distinct) == 1:
            return f"R[e + {EV_ARGS + distinct[0]}]"
        expr = str(EV_ARGS + distinct[-1])
        for pid, slot in slots.items():
            if slot != distinct[-1]:
                expr = f"({EV_ARGS + slot} if p == {pid} else {expr})"
        return f"R[e + {expr}]"

    def _fresh(self, prefix: str) -> str:
        self.tmp += 1
        return f"_{prefix}{self.tmp}"

    # --- the consumer ---------------------------------------------------------------------------
    def _advance(self, ind: int) -> None:
        """Move the program's clock to ``t`` if later, running interval blocks that fall due."""
        w = self.w
        c = self.c
        w.add(ind, f"if t > D[{rt.H_NOW}]:")
        w.add(ind + 1, f"D[{rt.H_NOW}] = t")
        for slot, b in zip(self.lay.interval_slots, c.intervals):
            w.add(ind + 1, f"while t >= D[{slot}]:")
            w.add(ind + 2, f"due = D[{slot}]")
            w.add(ind + 2, f"D[{slot}] = due + {b.interval_ns}")
            w.add(ind + 2, f"q = {c.probe_names.index(b.name)}")
            self._block(c.blocks.index(b), b, ind + 2, time="due", probe="q")

    def _program(self) -> None:
        """``program(ring_addr, n, data_addr)``: n >= 0 consumes n ring events; n == -1 runs
        the BEGIN blocks, n == -2 the END blocks, n == -3 adds up the hits of count-only
        points (``ring_addr`` is then ``S.probe_hits``), n == -4 moves virtual time to
        ``ring_addr`` (the run's end). Returns 1 once exit() was called."""
        w = self.w
        c = self.c
        w.function("@njit(**_JIT)", "_value(D, r, off)", "A map value, 0 for a missing key.")
        w.add(1, "return D[r + off] if r >= 0 else 0")
        w.function("@cfunc(_SIG, cache=True, _nrt=False)", "program(ring_addr, n, data_addr)",
                   "Run the script over n ring events (n >= 0) or a phase (n < 0).")
        w.add(1, "R = int64_ptr(ring_addr)")
        w.add(1, "D = int64_ptr(data_addr)")
        w.add(1, "e = 0")
        w.add(1, "if n == -3:")
        w.add(2, "# fold the hit counters of count-only points (ring_addr: S.probe_hits)")
        for p, updates in sorted(c.count_points.items()):
            w.add(2, f"h = R[{p}]")
            w.add(2, "if h != 0:")
            w.add(3, f"R[{p}] = 0")
            for name, by_probe in updates:
                ml = self.lay.maps[name]
                key = f"{p}, " if by_probe else ""
                w.add(3, f"r = {self._find_name(name)}(D, {key}1)")
                w.add(3, "if r >= 0:")
                w.add(4, f"D[r + {1 + ml.nkeys}] += h")
        w.add(2, "return 0")
        w.add(1, "if n == -4:")
        w.add(2, "# virtual time reached ring_addr: fire the interval probes due by then")
        w.add(2, "t = ring_addr")
        self._advance(2)
        w.add(2, "return 0")
        w.add(1, "if n < 0:")
        w.add(2, f"t = D[{rt.H_NOW}]")
        for code, kind in ((-1, "begin"), (-2, "end")):
            w.add(2, f"if n == {code}:")
            w.add(3, "pass")
            for i, b in enumerate(c.blocks):
                if b.kind == kind:
                    w.add(3, f"p = {c.probe_names.index(b.name)}")
                    self._block(i, b, 3)
        w.add(2, "return 0")
        w.add(1, f"if D[{rt.H_EXIT}] != 0:")
        w.add(2, "return 1")
        w.add(1, f"D[{rt.H_EVENTS}] += n")
        w.add(1, "for i in range(n):")
        w.add(2, f"e = i * {RING_COLS}")
        w.add(2, f"p = R[e + {EV_POINT}]")
        w.add(2, f"t = R[e + {EV_TIME}]")
        if c.intervals:
            self._advance(2)
        by_point: dict[int, list[int]] = {}
        for i, b in enumerate(c.blocks):
            for p in b.points:
                by_point.setdefault(p, []).append(i)
        groups: dict[tuple, list[int]] = {}
        for p, blocks in sorted(by_point.items()):
            groups.setdefault(tuple(blocks), []).append(p)
        first = True
        for blocks, points in groups.items():
            cond = " or ".join(f"p == {p}" for p in points)
            w.add(2, f"{'if' if first else 'elif'} {cond}:")
            first = False
            for i in blocks:
                self._block(i, c.blocks[i], 3)
        w.add(1, "return 0")
