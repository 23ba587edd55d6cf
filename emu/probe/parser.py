"""Parse probe scripts (``grammar.lark``, with lark's LALR parser) into :mod:`emu.probe.ast`.

Syntax errors become :class:`~emu.probe.errors.ProbeError` at the offending token, naming what
was found and what would have been accepted there, in words rather than grammar symbols.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, \
    UnexpectedToken, VisitError

from emu.probe import ast as A
from emu.probe.errors import ProbeError

GRAMMAR = Path(__file__).with_name("grammar.lark")

#: how terminals read in an error message
_TERMINAL_WORDS = {
    "PROBE": "a probe", "MAP": "a map", "VAR": "a $variable", "NAME": "a name",
    "INT": "a number", "STRING": "a string", "LBRACE": "'{'", "RBRACE": "'}'",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "SEMICOLON": "';'",
    "COMMA": "','", "SLASH": "'/'", "EQUAL": "'='", "COMPOUND": "an assignment",
    "INCDEC": "'++' or '--'", "DOT": "'.'", "LET": "'let'", "IF": "'if'", "_ELSE": "'else'",
    "COLON": "':'", "QMARK": "'?'", "MORETHAN": "'>'", "__ANON_0": "'->'",
    "OROR": "'||'", "ANDAND": "'&&'", "BAR": "'|'", "CARET": "'^'", "AMP": "'&'",
    "EQOP": "'==' or '!='", "RELOP": "a comparison", "RELOP1": "a comparison",
    "SHOP": "a shift", "ADDOP": "'+' or '-'", "STAR": "'*'", "PERCENT": "'%'",
    "UNOP": "'!' or '~'", "$END": "the end of the script",
}
_EXPR_START = {"INT", "STRING", "VAR", "MAP", "NAME", "LPAR", "UNOP", "ADDOP"}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR.read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=True, cache=True)


def parse(source: str, filename: str = "<script>") -> A.Program:
    """Parse ``source``; raise :class:`ProbeError` (with a caret) on a syntax error."""
    try:
        tree = _lark().parse(source)
        program = _ToAst().transform(tree)
    except UnexpectedInput as e:
        raise _syntax_error(e, source).located(source, filename) from None
    except VisitError as e:
        if isinstance(e.orig_exc, ProbeError):
            raise e.orig_exc.located(source, filename) from None
        raise
    program.source = source
    program.filename = filename
    return program


_OPERATORS = {"OROR", "ANDAND", "BAR", "CARET", "AMP", "EQOP", "RELOP", "SHOP", "ADDOP", "STAR",
              "SLASH", "PERCENT", "DOT", "QMARK", "__ANON_0", "MORETHAN",
              "RELOP1"}
_STRUCTURAL = ("SEMICOLON", "RBRACE", "RPAR", "RSQB", "COMMA", "LBRACE", "COLON", "$END")


def _describe(expected) -> str:
    """What the parser would have accepted, in words: punctuation first, then classes."""
    names = set(expected)
    words = [_TERMINAL_WORDS[n] for n in _STRUCTURAL if n in names]
    names -= set(_STRUCTURAL)
    if len(names & _OPERATORS) >= 3:
        words.append("an operator")
        names -= _OPERATORS
    if len(names & _EXPR_START) >= 3:
        words.append("an expression")
        names -= _EXPR_START
    for n in sorted(names):
        w = _TERMINAL_WORDS.get(n) or (f"'{n.lower()}'" if n.isalpha() else n)
        if w not in words:
            words.append(w)
    if not words:
        return ""
    if len(words) > 5:
        words = words[:5] + ["..."]
    return ", expected " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) +
                            " or " + words[-1])


def _syntax_error(e: UnexpectedInput, source: str) -> ProbeError:
    if isinstance(e, UnexpectedCharacters):
        ch = source[e.pos_in_stream] if e.pos_in_stream < len(source) else ""
        if ch == '"':
            return ProbeError("unterminated string", e.line, e.column)
        return ProbeError(f"unexpected character {ch!r}", e.line, e.column)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken)
                                        and e.token.type == "$END"):
        lines = source.rstrip().splitlines() or [""]
        expected = getattr(e, "expected", None) or getattr(e, "accepts", None) or ()
        return ProbeError("unexpected end of the script" + _describe(expected),
                          len(lines), len(lines[-1]) + 1)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = e.accepts or e.expected
        return ProbeError(f"unexpected {str(tok)!r}" + _describe(expected), tok.line,
                          tok.column, width=len(str(tok)))
    return ProbeError(str(e).splitlines()[0], getattr(e, "line", 0), getattr(e, "column", 0))


def _pos(meta_or_token) -> A.Pos:
    if isinstance(meta_or_token, Token):
        return (meta_or_token.line, meta_or_token.column)
    return (getattr(meta_or_token, "line", 0), getattr(meta_or_token, "column", 0))


def _int(tok: Token) -> int:
    text = str(tok).replace("_", "")
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise ProbeError(f"bad number {str(tok)!r}", tok.line, tok.column) from None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "0": "\0", "e": "\x1b"}


def _unescape(tok: Token) -> str:
    body = str(tok)[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ProbeError(f"unknown escape sequence '\\{nxt}'", tok.line,
                                 tok.column + i + 1, width=2)
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@v_args(meta=True)
class _ToAst(Transformer):
    """lark tree -> :mod:`emu.probe.ast` (positions from the tree's metadata)."""

    def start(self, meta, items):
        return A.Program(blocks=[i for i in items if isinstance(i, A.Block)],
                         decls=[i for i in items if isinstance(i, A.MapDecl)], pos=(1, 1))

    def map_decl(self, meta, c):
        return A.MapDecl(str(c[0]), str(c[1]), _int(c[2]), pos=_pos(meta))

    def block(self, meta, c):
        probes = [x for x in c if isinstance(x, A.Probe)]
        pred = next((x for x in c if isinstance(x, tuple) and x[0] == "pred"), None)
        body = c[-1]
        return A.Block(probes, pred[1] if pred else None, body, pos=_pos(meta))

    def probe(self, meta, c):
        return A.Probe(str(c[0]), pos=_pos(c[0]))

    def predicate(self, meta, c):
        return ("pred", c[0])

    def body(self, meta, c):
        return [s for s in c if s is not None and not isinstance(s, Token)]

    def if_stmt(self, meta, c):
        test, then = c[0], c[1]
        other = []
        if len(c) > 2 and c[-1] is not None:
            rest = c[-1]
            other = rest if isinstance(rest, list) else [rest]
        return A.If(test, then, other, pos=_pos(meta))

    def map_assign(self, meta, c):
        return A.MapAssign(c[0], str(c[1]), c[2], pos=_pos(meta))

    def var_assign(self, meta, c):
        return A.VarAssign(str(c[0]), str(c[1]), c[2], pos=_pos(meta))

    def let_stmt(self, meta, c):
        return A.VarAssign(str(c[0]), "=", c[1] if len(c) > 1 else None, declare=True,
                           pos=_pos(meta))

    def incdec(self, meta, c):
        target = c[0] if not isinstance(c[0], Token) else A.Var(str(c[0]), pos=_pos(c[0]))
        return A.IncDec(target, 1 if str(c[1]) == "++" else -1, pos=_pos(meta))

    def pre_incdec(self, meta, c):
        target = c[1] if not isinstance(c[1], Token) else A.Var(str(c[1]), pos=_pos(c[1]))
        return A.IncDec(target, 1 if str(c[0]) == "++" else -1, pos=_pos(meta))

    def call_stmt(self, meta, c):
        return A.CallStmt(c[0], pos=_pos(meta))

    # expressions
    def cond(self, meta, c):
        return A.Cond(c[0], c[1], c[2], pos=_pos(meta))

    def binop(self, meta, c):
        return A.Binary(str(c[1]), c[0], c[2], pos=_pos(c[1]))

    def unop(self, meta, c):
        return A.Unary(str(c[0]), c[1], pos=_pos(c[0]))

    def field(self, meta, c):
        return A.Field(c[0], str(c[1]), pos=_pos(c[1]))

    def int_lit(self, meta, c):
        return A.Int(_int(c[0]), pos=_pos(c[0]))

    def str_lit(self, meta, c):
        return A.Str(_unescape(c[0]), pos=_pos(c[0]))

    def var(self, meta, c):
        return A.Var(str(c[0]), pos=_pos(c[0]))

    def ident(self, meta, c):
        return A.Ident(str(c[0]), pos=_pos(c[0]))

    def map_ref(self, meta, c):
        return A.MapRef(str(c[0]), [k for k in c[1:] if k is not None], pos=_pos(c[0]))

    def call(self, meta, c):
        return A.Call(str(c[0]), [a for a in c[1:] if a is not None], pos=_pos(c[0]))
