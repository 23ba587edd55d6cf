"""The syntax tree of a probe script (what the parser builds and the verifier checks).

Every node carries ``pos = (line, col)`` (1-based) so errors can point at it. Expression
nodes get their checked type (``ty``) filled in by the verifier.
"""
from __future__ import annotations

from dataclasses import dataclass, field

Pos = tuple[int, int]


@dataclass
class Node:
    pos: Pos = field(default=(0, 0), kw_only=True, compare=False, repr=False)


# --- expressions ---------------------------------------------------------------------------------
@dataclass
class Expr(Node):
    ty: object = field(default=None, kw_only=True, compare=False, repr=False)


@dataclass
class Int(Expr):
    value: int


@dataclass
class Str(Expr):
    value: str


@dataclass
class Var(Expr):
    name: str            # with its ``$``


@dataclass
class MapRef(Expr):
    name: str            # ``@`` or ``@name``
    keys: list[Expr]


@dataclass
class Ident(Expr):
    name: str            # a builtin: nsecs, vm, vcpu, probe, ...


@dataclass
class Field(Expr):
    base: Expr           # ``args`` (an Ident)
    name: str


@dataclass
class Call(Expr):
    name: str
    args: list[Expr]


@dataclass
class Unary(Expr):
    op: str
    operand: Expr


@dataclass
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass
class Cond(Expr):
    test: Expr
    then: Expr
    other: Expr


# --- statements ----------------------------------------------------------------------------------
@dataclass
class Stmt(Node):
    pass


@dataclass
class MapAssign(Stmt):
    target: MapRef
    op: str              # ``=``, ``+=``, ...
    value: Expr


@dataclass
class VarAssign(Stmt):
    name: str
    op: str
    value: Expr | None   # None: ``let $x;``
    declare: bool = False


@dataclass
class IncDec(Stmt):
    target: Expr         # MapRef or Var
    delta: int


@dataclass
class CallStmt(Stmt):
    call: Call


@dataclass
class If(Stmt):
    test: Expr
    then: list[Stmt]
    other: list[Stmt]


# --- top level -----------------------------------------------------------------------------------
@dataclass
class Probe(Node):
    spec: str


@dataclass
class Block(Node):
    probes: list[Probe]
    predicate: Expr | None
    body: list[Stmt]


@dataclass
class MapDecl(Node):
    name: str
    kind: str
    size: int


@dataclass
class Program(Node):
    blocks: list[Block]
    decls: list[MapDecl]
    source: str = ""
    filename: str = "<script>"
