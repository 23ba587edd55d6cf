"""Check a parsed probe script before anything runs, and annotate it for code generation.

The verifier plays the part of the kernel's BPF verifier and of bpftrace's semantic passes: it
resolves probes (unknown names and wildcards that match nothing are errors), fields (each must
exist, with one type, on every point a block attaches to), builtins and functions; it types
every expression; it fixes each map's key types and value kind at first use (a map used with two
value types or two key shapes is an error, as in bpftrace); it checks ``printf`` format strings
against their arguments. The language has no loops and no calls to user code, so every checked
program runs in bounded time and cannot reach Python.

The result, :class:`Checked`, is what :mod:`emu.probe.codegen` turns into jitted code.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from emu.probe import ast as A
from emu.probe import printf as fmt
from emu.probe.buckets import hist_size, lhist_size
from emu.probe.errors import ProbeError
from emu.probe.points import INT, STR, PointCatalog, Ty, field_type, has_wildcard, \
    interval_ns, match, sym

#: bpftrace's default ``max_map_keys``
DEFAULT_MAP_KEYS = 4096
MAX_MAP_KEYS = 1 << 22
#: words a map may take (keys and values, 8 bytes each) before the script must shrink it
MAX_MAP_WORDS = 1 << 25
MAX_LHIST_BUCKETS = 1000
MAX_KEYS = 8

AGGREGATIONS = ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist")
STATEMENTS = ("printf", "print", "clear", "zero", "delete", "exit")
EXPR_FUNCTIONS = ("has_key",)
BUILTINS = {
    "nsecs": "virtual time of the event, in ns since the run started",
    "elapsed": "the same as nsecs (the run starts at 0)",
    "vm": "VM slot of the event (-1 when none)",
    "vcpu": "vCPU of the event within its VM (-1 when none)",
    "tid": "index of the execution context the event ran in",
    "ctx": "the execution context, by name (vm0/vcpu1, vm0/vmm, rcu_callback, ...)",
    "probe": "the name of the probe point that fired",
    "args": "the point's fields: args.NAME",
    **{f"arg{i}": f"raw field slot {i} of the event" for i in range(6)},
}
#: how a map's value is laid out: words per entry
_INT_KINDS = ("count", "sum", "min", "max", "int")


@dataclass
class MapInfo:
    name: str
    kind: str                    # one of AGGREGATIONS or "int"
    key_types: list[Ty]
    pos: A.Pos
    id: int = 0
    max_keys: int = DEFAULT_MAP_KEYS
    hist_bits: int | None = None
    lhist: tuple[int, int, int] | None = None
    declared: bool = False
    decl_pos: A.Pos | None = None

    @property
    def width(self) -> int:
        if self.kind in ("avg", "stats"):
            return 2
        if self.kind == "hist":
            return hist_size(self.hist_bits or 0)
        if self.kind == "lhist":
            return lhist_size(*self.lhist)
        return 1

    @property
    def readable(self) -> bool:
        return self.kind in _INT_KINDS


@dataclass
class CheckedBlock:
    kind: str                    # "event", "begin", "end" or "interval"
    points: list[int]            # point ids (event blocks)
    interval_ns: int
    predicate: A.Expr | None
    body: list[A.Stmt]
    pos: A.Pos
    name: str = ""               # BEGIN, END or interval:UNIT:N (what ``probe`` reads there)
    field_slots: dict[str, dict[int, int]] = field(default_factory=dict)  # name -> point -> slot
    vars: dict[str, Ty] = field(default_factory=dict)


@dataclass
class Checked:
    blocks: list[CheckedBlock]
    maps: dict[str, MapInfo]
    formats: list[tuple[str, list[Ty]]]
    probe_names: list[str]       # the ``probe`` builtin's names (points, then special probes)
    uses_exit: bool
    catalog: PointCatalog
    print_types: list[Ty] = field(default_factory=list)
    #: points whose every block only counts into maps nothing reads before the end
    #: (``@x = count()``, ``@[probe] = count()``): point -> [(map, keyed by probe)]
    count_points: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)

    @property
    def attached(self) -> list[int]:
        return sorted({p for b in self.blocks for p in b.points})

    @property
    def intervals(self) -> list[CheckedBlock]:
        return [b for b in self.blocks if b.kind == "interval"]


def verify(program: A.Program, catalog: PointCatalog) -> Checked:
    """Check ``program`` against ``catalog``; raise :class:`ProbeError` at the first problem."""
    try:
        return _Verifier(program, catalog).run()
    except ProbeError as e:
        raise e.located(program.source, program.filename) from None


def _err(node, message: str, width: int = 1) -> ProbeError:
    line, col = node.pos if isinstance(node, A.Node) else node
    return ProbeError(message, line, col, width=width)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class _Verifier:
    def __init__(self, program: A.Program, catalog: PointCatalog):
        self.program = program
        self.catalog = catalog
        self.names = catalog.names
        self.maps: dict[str, MapInfo] = {}
        self.formats: list[tuple[str, list[Ty]]] = []
        self.print_types: list[Ty] = []
        self.uses_exit = False
        self.block: CheckedBlock | None = None
        self.point_fields: list[dict] = []
        for p in catalog.points:
            self.names.intern("probe", p.name)

    # --- top level ------------------------------------------------------------------------------
    def run(self) -> Checked:
        for d in self.program.decls:
            self._declare(d)
        self._collect_map_kinds()
        blocks = [self._block(b) for b in self.program.blocks]
        if not blocks:
            raise ProbeError("the script has no probes", 1, 1)
        for i, m in enumerate(sorted(self.maps)):
            self.maps[m].id = i
        for m in self.maps.values():
            if m.key_types is None:
                raise _err(m.pos, f"map {m.name} is declared but never assigned")
            words = (2 * _pow2(m.max_keys)) * (1 + len(m.key_types) + m.width)
            if words > MAX_MAP_WORDS:
                raise _err(m.decl_pos or m.pos, f"map {m.name} would take {words * 8 >> 20} MiB "
                                  f"({m.max_keys} keys of {m.width} values); declare fewer "
                                  f"keys with `let {m.name} = hash(N);`")
        return Checked(blocks=blocks, maps=self.maps, formats=self.formats,
                       probe_names=self.names.names("probe"), uses_exit=self.uses_exit,
                       catalog=self.catalog, print_types=self.print_types,
                       count_points=_count_points(blocks))

    def _declare(self, d: A.MapDecl) -> None:
        if d.kind != "hash":
            raise _err(d, f"unknown map type {d.kind!r}; emu maps are hash maps: "
                          f"`let {d.name} = hash(N);`")
        if not 0 < d.size <= MAX_MAP_KEYS:
            raise _err(d, f"map {d.name}: between 1 and {MAX_MAP_KEYS} keys, not {d.size}")
        if d.name in self.maps:
            raise _err(d, f"map {d.name} is declared twice")
        self.maps[d.name] = MapInfo(d.name, "", None, d.pos, max_keys=d.size, declared=True,
                                    decl_pos=d.pos)

    def _collect_map_kinds(self) -> None:
        """First pass: each map's value kind, from its assignments in script order."""
        def walk(stmts):
            for s in stmts:
                if isinstance(s, A.MapAssign):
                    kind = "int"
                    if s.op == "=" and isinstance(s.value, A.Call) and \
                            s.value.name in AGGREGATIONS:
                        kind = s.value.name
                    self._set_kind(s.target, kind, s.value)
                elif isinstance(s, A.IncDec) and isinstance(s.target, A.MapRef):
                    self._set_kind(s.target, "int", None)
                elif isinstance(s, A.If):
                    walk(s.then)
                    walk(s.other)
        for b in self.program.blocks:
            walk(b.body)

    def _set_kind(self, ref: A.MapRef, kind: str, value) -> None:
        m = self.maps.get(ref.name)
        if m is None:
            m = self.maps[ref.name] = MapInfo(ref.name, kind, None, ref.pos)
        elif not m.kind:
            m.kind = kind
            m.pos = ref.pos
        elif m.kind != kind:
            raise _err(ref, f"map {ref.name} holds {_kind_words(m.kind)} (line {m.pos[0]}) "
                            f"and cannot also hold {_kind_words(kind)}", len(ref.name))
        if kind == "hist":
            bits = 0
            if len(value.args) == 2:
                bits = self._const(value.args[1], "hist()'s second argument")
                if not 0 <= bits <= 5:
                    raise _err(value.args[1], "hist()'s second argument must be 0 to 5")
            if m.hist_bits is not None and m.hist_bits != bits:
                raise _err(value, f"map {ref.name} is a hist() with {m.hist_bits} bits "
                                  "elsewhere")
            m.hist_bits = bits
        if kind == "lhist":
            if len(value.args) != 4:
                raise _err(value, "lhist() takes 4 arguments: lhist(value, min, max, step)")
            lo, hi, step = (self._const(a, "lhist()'s bounds") for a in value.args[1:])
            if step <= 0 or hi <= lo:
                raise _err(value, "lhist() needs min < max and step > 0")
            if (hi - lo) // step > MAX_LHIST_BUCKETS:
                raise _err(value, f"lhist() may have at most {MAX_LHIST_BUCKETS} buckets")
            if m.lhist is not None and m.lhist != (lo, hi, step):
                raise _err(value, f"map {ref.name} is an lhist{m.lhist} elsewhere")
            m.lhist = (lo, hi, step)

    def _const(self, e: A.Expr, what: str) -> int:
        if isinstance(e, A.Int):
            return e.value
        if isinstance(e, A.Unary) and e.op == "-" and isinstance(e.operand, A.Int):
            return -e.operand.value
        raise _err(e, f"{what} must be a number")

    # --- blocks ---------------------------------------------------------------------------------
    def _block(self, b: A.Block) -> CheckedBlock:
        kinds = set()
        points: list[int] = []
        period = 0
        special = ""
        index = self.catalog.index
        for p in b.probes:
            spec = p.spec
            if spec.upper() in ("BEGIN", "END"):
                kinds.add(spec.lower())
                special = spec.upper()
                self.names.intern("probe", special)
                continue
            if spec.lower().startswith("interval"):
                ns = interval_ns(spec)
                if ns is None:
                    raise _err(p, f"bad interval probe {spec!r}: write interval:us:N, "
                                  "interval:ms:N or interval:s:N (N > 0, virtual time)",
                               len(spec))
                kinds.add("interval")
                period = ns
                special = spec
                self.names.intern("probe", spec)
                continue
            if ":" not in spec:
                raise _err(p, f"unknown probe {spec!r}: a probe is provider:name, BEGIN, END "
                              "or interval:ms:N", len(spec))
            every = match(spec, self.catalog.known)
            if not every:
                what = "matches no probe point" if has_wildcard(spec) else "is not a probe point"
                raise _err(p, f"{spec!r} {what}" + _suggest(spec, self.catalog.known) +
                           " (emu probes -l lists them)", len(spec))
            points.extend(index[n] for n in match(spec, index) if index[n] not in points)
            kinds.add("event")
        if len(kinds) > 1:
            raise _err(b, "BEGIN, END, interval and point probes cannot share one block")
        kind = kinds.pop()
        if kind == "interval" and len(b.probes) > 1:
            raise _err(b.probes[1], "an interval probe must have a block of its own")
        block = CheckedBlock(kind, points, period, b.predicate, b.body, b.pos, name=special)
        self.block = block
        if b.predicate is not None:
            self._expect_value(b.predicate)
        self._stmts(b.body)
        self.block = None
        return block

    # --- statements -----------------------------------------------------------------------------
    def _stmts(self, stmts) -> None:
        for s in stmts:
            self._stmt(s)

    def _stmt(self, s: A.Stmt) -> None:
        if isinstance(s, A.MapAssign):
            m = self._map_target(s.target)
            if m.kind in AGGREGATIONS:
                self._aggregation(m, s.value)
            else:
                self._expect_value(s.value)
        elif isinstance(s, A.VarAssign):
            if s.value is None:
                self._bind(s, s.name, INT)
                return
            ty = self._expect_value(s.value, allow_str=True)
            if s.op != "=":
                self._var(A.Var(s.name, pos=s.pos))
                ty = INT
            self._bind(s, s.name, ty)
        elif isinstance(s, A.IncDec):
            if isinstance(s.target, A.MapRef):
                self._map_target(s.target)
            else:
                self._var(s.target)
        elif isinstance(s, A.If):
            self._expect_value(s.test)
            self._stmts(s.then)
            self._stmts(s.other)
        elif isinstance(s, A.CallStmt):
            self._call_stmt(s.call)
        else:   # pragma: no cover - the parser builds no other statement
            raise _err(s, f"unsupported statement {type(s).__name__}")

    def _bind(self, node, name: str, ty: Ty) -> None:
        old = self.block.vars.get(name)
        if ty == STR:
            raise _err(node, f"{name}: scratch variables hold numbers; a string literal can "
                             "only be a printf argument, a map key or compared with a name")
        if old is not None and old != ty:
            raise _err(node, f"{name} holds {old} values and cannot be assigned {ty}")
        self.block.vars[name] = ty

    def _map_target(self, ref: A.MapRef) -> MapInfo:
        m = self.maps[ref.name]
        self._keys(m, ref)
        return m

    def _keys(self, m: MapInfo, ref: A.MapRef) -> None:
        if len(ref.keys) > MAX_KEYS:
            raise _err(ref, f"map keys have at most {MAX_KEYS} parts")
        types = []
        for k in ref.keys:
            ty = self._expect_value(k, allow_str=True)
            if ty == STR:
                k.ty = ty = sym("string")
                k.value_id = self.names.intern("string", k.value)
            types.append(ty)
        if m.key_types is None:
            m.key_types = types
            return
        if len(types) != len(m.key_types) or any(a != b for a, b in zip(types, m.key_types)):
            raise _err(ref, f"map {m.name} is keyed by {_key_words(m.key_types)} elsewhere, "
                            f"here by {_key_words(types)}", len(ref.name))

    def _aggregation(self, m: MapInfo, value: A.Expr) -> None:
        name = value.name
        want = {"count": (0, 0), "hist": (1, 2), "lhist": (4, 4)}.get(name, (1, 1))
        if not want[0] <= len(value.args) <= want[1]:
            n = want[0] if want[0] == want[1] else f"{want[0]} or {want[1]}"
            raise _err(value, f"{name}() takes {n} argument{'s' if n != 1 else ''}",
                       len(name))
        if value.args:
            self._expect_value(value.args[0])

    def _call_stmt(self, c: A.Call) -> None:
        name = c.name
        if name == "printf":
            self._printf(c)
        elif name == "print":
            if not c.args or len(c.args) > 3:
                raise _err(c, "print() takes a map and optionally top and div: print(@m, 10)",
                           5)
            target = c.args[0]
            if isinstance(target, A.MapRef) and not target.keys:
                self._map_read_target(target)
                for extra in c.args[1:]:
                    if self._const(extra, "print()'s top and div") < 0:
                        raise _err(extra, "print()'s top and div must not be negative")
            elif len(c.args) > 1:
                raise _err(c.args[1], "top and div apply to maps only")
            else:
                ty = self._expect_value(target, allow_str=True)
                target.print_id = len(self.print_types)
                self.print_types.append(ty)
        elif name in ("clear", "zero"):
            if len(c.args) != 1 or not isinstance(c.args[0], A.MapRef) or c.args[0].keys:
                raise _err(c, f"{name}() takes one map: {name}(@m)", len(name))
            self._map_read_target(c.args[0])
        elif name == "delete":
            self._delete(c)
        elif name == "exit":
            if c.args:
                raise _err(c.args[0], "exit() takes no arguments")
            self.uses_exit = True
        elif name in AGGREGATIONS:
            raise _err(c, f"{name}() must be assigned to a map: @m = {name}(...)", len(name))
        else:
            raise _err(c, f"unknown function {name}()" +
                       _suggest(name, STATEMENTS + EXPR_FUNCTIONS + AGGREGATIONS), len(name))

    def _map_read_target(self, ref: A.MapRef) -> MapInfo:
        m = self.maps.get(ref.name)
        if m is None or not m.kind:
            raise _err(ref, f"map {ref.name} is never assigned" + _suggest(ref.name, self.maps),
                       len(ref.name))
        return m

    def _delete(self, c: A.Call) -> None:
        args = c.args
        if len(args) == 1 and isinstance(args[0], A.MapRef) and args[0].keys:
            ref = args[0]                             # delete(@m[k]) (older bpftrace form)
        elif len(args) >= 2 and isinstance(args[0], A.MapRef) and not args[0].keys:
            ref = A.MapRef(args[0].name, list(args[1:]), pos=args[0].pos)
        else:
            raise _err(c, "delete() takes a map and a key: delete(@m, key)", 6)
        m = self._map_read_target(ref)
        if m.key_types is None:
            raise _err(ref, f"map {ref.name} is never assigned")
        self._keys(m, ref)
        c.delete_ref = ref

    def _printf(self, c: A.Call) -> None:
        if not c.args or not isinstance(c.args[0], A.Str):
            raise _err(c, "printf() needs a format string first: printf(\"%d\\n\", x)", 6)
        fmt_node = c.args[0]
        types = [self._expect_value(a, allow_str=True) for a in c.args[1:]]
        specs = [p for p in fmt.parse_format(fmt_node.value) if not isinstance(p, str)]
        check_types = []
        for i, ty in enumerate(types):
            conv = getattr(specs[i], "conversion", "d") if i < len(specs) else "d"
            if ty.kind == "sym":
                check_types.append("str" if conv == "s" else "int")
            else:
                check_types.append("str" if ty == STR else "int")
        try:
            fmt.check_format(fmt_node.value, check_types)
        except fmt.FormatError as e:
            raise _err(fmt_node, f"printf: {e.message}") from None
        c.format_id = len(self.formats)
        self.formats.append((fmt_node.value, types))

    # --- expressions ----------------------------------------------------------------------------
    def _expect_value(self, e: A.Expr, allow_str: bool = False) -> Ty:
        ty = self._expr(e)
        if ty == STR and not allow_str:
            raise _err(e, "a string literal is not a number")
        return ty

    def _expr(self, e: A.Expr) -> Ty:
        ty = self._type(e)
        e.ty = ty
        return ty

    def _type(self, e: A.Expr) -> Ty:
        if isinstance(e, A.Int):
            if not -(1 << 63) <= e.value < (1 << 64):
                raise _err(e, "number does not fit in 64 bits")
            return INT
        if isinstance(e, A.Str):
            return STR
        if isinstance(e, A.Var):
            return self._var(e)
        if isinstance(e, A.MapRef):
            m = self._map_read_target(e)
            if not m.readable:
                raise _err(e, f"{m.name} holds {_kind_words(m.kind)}, which cannot be read as "
                              "a number", len(e.name))
            self._keys(m, e)
            return INT
        if isinstance(e, A.Ident):
            return self._builtin(e)
        if isinstance(e, A.Field):
            return self._field(e)
        if isinstance(e, A.Call):
            if e.name == "has_key":
                if len(e.args) < 2 or not isinstance(e.args[0], A.MapRef) or e.args[0].keys:
                    raise _err(e, "has_key() takes a map and a key: has_key(@m, key)", 7)
                ref = A.MapRef(e.args[0].name, list(e.args[1:]), pos=e.args[0].pos)
                m = self._map_read_target(ref)
                self._keys(m, ref)
                e.has_ref = ref
                return INT
            if e.name in AGGREGATIONS:
                raise _err(e, f"{e.name}() must be assigned to a map: @m = {e.name}(...)",
                           len(e.name))
            if e.name in STATEMENTS:
                raise _err(e, f"{e.name}() is a statement and has no value", len(e.name))
            raise _err(e, f"unknown function {e.name}()" +
                       _suggest(e.name, STATEMENTS + EXPR_FUNCTIONS + AGGREGATIONS),
                       len(e.name))
        if isinstance(e, A.Unary):
            self._expect_value(e.operand)
            return INT
        if isinstance(e, A.Binary):
            return self._binary(e)
        if isinstance(e, A.Cond):
            self._expect_value(e.test)
            a = self._expect_value(e.then)
            b = self._expect_value(e.other)
            return a if a == b else INT
        raise _err(e, f"unsupported expression {type(e).__name__}")   # pragma: no cover

    def _binary(self, e: A.Binary) -> Ty:
        a = self._expr(e.left)
        b = self._expr(e.right)
        if e.op in ("==", "!=") and STR in (a, b):
            lit, other = (e.left, b) if a == STR else (e.right, a)
            if other.kind != "sym":
                raise _err(lit, "a string can only be compared with a named value "
                                "(probe, ctx or a named field such as args.cause)")
            value = self.names.value(other.table, lit.value)
            if value is None:
                choices = self.names.names(other.table)
                raise _err(lit, f"{lit.value!r} is not a {other.table}" +
                           _suggest(lit.value, choices) +
                           (f" ({', '.join(choices[:12])})" if choices else ""),
                           len(lit.value) + 2)
            lit.resolved = value
            return INT
        for side, ty in ((e.left, a), (e.right, b)):
            if ty == STR:
                raise _err(side, "a string literal is not a number")
        return INT

    def _var(self, e: A.Var) -> Ty:
        ty = self.block.vars.get(e.name)
        if ty is None:
            raise _err(e, f"{e.name} is used before it is assigned", len(e.name))
        return ty

    def _builtin(self, e: A.Ident) -> Ty:
        name = e.name
        if name not in BUILTINS:
            raise _err(e, f"unknown identifier {name!r}" + _suggest(name, BUILTINS),
                       len(name))
        if name == "args":
            raise _err(e, "args is read field by field: args.NAME (emu probes -lv lists them)",
                       4)
        if name == "probe":
            return sym("probe")
        if name == "ctx":
            return sym("ctx")
        if name.startswith("arg") and self.block.kind != "event":
            raise _err(e, f"{name} exists only in point probes", len(name))
        return INT

    def _field(self, e: A.Field) -> Ty:
        if not (isinstance(e.base, A.Ident) and e.base.name == "args"):
            raise _err(e, "only args has fields (args.NAME)")
        block = self.block
        if block.kind != "event":
            raise _err(e.base, f"args exists only in point probes, not in {block.kind.upper()}",
                       4)
        slots: dict[int, int] = {}
        ty = None
        for pid in block.points:
            point = self.catalog.points[pid]
            names = [f.name for f in point.fields]
            if e.name not in names:
                raise _err(e, f"{point.name} has no field {e.name!r}" +
                           _suggest(e.name, names) +
                           f" (its fields: {', '.join(names) or 'none'})", len(e.name))
            i = names.index(e.name)
            fty = field_type(point.fields[i].type)
            if ty is not None and fty != ty:
                raise _err(e, f"args.{e.name} is {ty} on one attached point and {fty} on "
                              f"{point.name}", len(e.name))
            ty = fty
            slots[pid] = i
        block.field_slots[e.name] = slots
        return ty


def _kind_words(kind: str) -> str:
    return "plain values" if kind == "int" else f"{kind}() values"


def _key_words(types) -> str:
    return "no key" if not types else "[" + ", ".join(str(t) for t in types) + "]"


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


def _count_points(blocks: list[CheckedBlock]) -> dict[int, list[tuple[str, bool]]]:
    """Points that need no event at all: each of their blocks only does ``@m = count()`` or
    ``@m[probe] = count()`` without a predicate, into maps the program never reads, prints,
    clears or deletes from (so counting hits and adding them up at the end is exact)."""
    read: set[str] = set()

    def reads(node) -> None:
        if isinstance(node, A.MapRef):
            read.add(node.name)
        if isinstance(node, A.Call) and node.name != "count":
            for a in node.args:
                if isinstance(a, A.MapRef):
                    read.add(a.name)
        if isinstance(node, A.MapAssign):
            for k in node.target.keys:
                reads(k)
            reads(node.value)
            return
        if isinstance(node, A.IncDec):
            if isinstance(node.target, A.MapRef):
                read.add(node.target.name)      # read-modify-write
            return
        for value in vars(node).values():
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, A.Node):
                    reads(child)

    def counts(b: CheckedBlock):
        if b.predicate is not None or b.kind != "event":
            return None
        out = []
        for st in b.body:
            if not (isinstance(st, A.MapAssign) and st.op == "=" and
                    isinstance(st.value, A.Call) and st.value.name == "count"):
                return None
            keys = st.target.keys
            if keys and not (len(keys) == 1 and isinstance(keys[0], A.Ident)
                             and keys[0].name == "probe"):
                return None
            out.append((st.target.name, bool(keys)))
        return out

    for b in blocks:
        if b.predicate is not None:
            reads(b.predicate)
        for st in b.body:
            reads(st)
    result: dict[int, list[tuple[str, bool]]] = {}
    excluded: set[int] = set()
    for b in blocks:
        c = counts(b)
        for p in b.points:
            if c is None or any(name in read for name, _ in c):
                excluded.add(p)
            else:
                result.setdefault(p, []).extend(c)
    return {p: v for p, v in result.items() if p not in excluded}
