"""Static check of Jinja2 chat templates: parse to an AST, never render.

A chat template ships with the model (GGUF `tokenizer.chat_template*` metadata, the
`chat_template` of `tokenizer_config.json`) and is rendered by whatever serves the model. Rendered
outside a sandbox, a template can walk from any object to `__globals__` and run commands
(CVE-2024-34359 in llama-cpp-python, the 2025 vLLM variant, CVE-2026-5760 in SGLang). Real chat
templates only read message fields, loop, compare and concatenate, so the check is strict:

- `chat-template-ssti` (CRITICAL): an attribute or item access, `attr` filter, attribute argument
  of `map`/`selectattr`/`sort`/... or `str.format` field that names a private or interpreter
  internal attribute (`_x`, `__class__`, `gi_frame`, `f_globals`, `mro`, ...), wherever the name
  comes from: a literal, or a string the template builds (`'_' ~ '_class_' ~ '_'`); an `attr`
  filter whose argument is not a literal; any attribute or item taken directly from a global
  that is a classic SSTI root (`cycler`, `joiner`, `namespace`, `lipsum`, `range`, `dict`), and any
  use of `self`, `config`, `request`, `url_for` or `get_flashed_messages`. Calling the Jinja
  globals (`namespace(found=false)`, `range(3)`) and using what they return is allowed.
- `chat-template-dynamic-attribute` (HIGH): an item or attribute lookup whose key is not a literal
  and may be a string the template built itself (from literals containing `_`, from special
  tokens, from function reprs, from formatting...). Keys that are numbers or come from the
  conversation data (`messages[loop.index0 - 1]`, `props[name]` in a loop over the properties)
  are allowed. Jinja falls back from `x[key]` to `getattr(x, key)`, so a built key is an
  attribute walk the literal checks cannot see.
- `chat-template-include` (HIGH): `include`, `import`, `from` or `extends`: a chat template never
  loads other templates, and with a file-system loader they read files.
- `chat-template-malformed` (HIGH): the template does not parse (or is too deeply nested to
  analyse): no consumer renders it as written, and it cannot be judged.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence
from typing import Final

import markupsafe
from jinja2 import TemplateError, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from proxy.scan.report import Finding, Severity

SSTI = "chat-template-ssti"
DYNAMIC = "chat-template-dynamic-attribute"
INCLUDE = "chat-template-include"
MALFORMED = "chat-template-malformed"

# Jinja globals whose own attributes lead to Python internals (`cycler.__init__.__globals__`).
# Calling them is what templates do; touching their attributes is not.
CALLABLE_ROOTS: Final = frozenset({"cycler", "joiner", "namespace", "lipsum", "range", "dict"})
# Names that only exist in web frameworks' contexts (or are the template itself): a chat template
# has no business naming them at all.
FORBIDDEN_ROOTS: Final = frozenset({"self", "config", "request", "url_for", "get_flashed_messages"})
ROOTS: Final = CALLABLE_ROOTS | FORBIDDEN_ROOTS

# Attributes without underscores that still reach frames, code and globals (the sandbox's own
# internal-attribute list, plus frame and traceback fields).
INTERNAL_ATTRIBUTES: Final = frozenset(
    {
        "mro", "func_globals", "func_code", "func_closure", "im_func", "im_self", "im_class",
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended",
        "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame", "ag_code", "ag_await",
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next",
        "co_code", "co_consts", "co_names",
    }
)  # fmt: skip

# Functions consumers put in the template globals; their reprs contain underscores.
CONTEXT_FUNCTIONS: Final = frozenset({"raise_exception", "strftime_now"})
# Names Jinja binds inside macros and call blocks, whatever the caller passes.
MACRO_SPECIALS: Final = frozenset({"caller", "varargs", "kwargs"})

# Filters whose result cannot spell a name the inputs did not already spell.
SAFE_FILTERS: Final = frozenset(
    {
        "abs", "capitalize", "center", "d", "default", "dictsort", "e", "escape", "first",
        "forceescape", "indent", "items", "join", "last", "list", "lower", "replace", "reverse",
        "safe", "slice", "batch", "sort", "striptags", "title", "tojson", "trim", "truncate",
        "unique", "upper", "wordwrap",
    }
)  # fmt: skip
# Filters that always return a number.
NUMERIC_FILTERS: Final = frozenset(
    {"count", "length", "int", "float", "round", "wordcount", "sum", "min", "max"}
)
# Methods on data (str, dict, list) that cannot spell a new name either.
SAFE_METHODS: Final = frozenset(
    {
        "lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "split", "rsplit",
        "splitlines", "get", "keys", "values", "items", "replace", "join", "startswith",
        "endswith", "count", "index", "find", "rfind", "copy", "next", "cycle", "changed",
    }
)  # fmt: skip
# Loop attributes that are numbers or booleans.
LOOP_NUMBERS: Final = frozenset(
    {"index", "index0", "revindex", "revindex0", "length", "first", "last", "depth", "depth0"}
)

# Filters that take an attribute name (a dotted path), and where it sits among the arguments.
ATTRIBUTE_ARGUMENT: Final = {
    "selectattr": 0, "rejectattr": 0, "groupby": 0, "sum": 0, "map": None,
    "sort": 2, "unique": 1, "min": 1, "max": 1, "join": 1,
}  # fmt: skip

# Builtin methods whose names contain an underscore: their reprs spell it (`format_map`).
_UNDERSCORE_METHODS: Final = frozenset(
    name
    for kind in (str, int, float, bool, dict, list, tuple, type(None), markupsafe.Markup)
    for name in dir(kind)
    if "_" in name and not name.startswith("_")
)

MAX_FOLDED_CHARS = 4096
MAX_FOLD_DEPTH = 64
MAX_FIXPOINT_ROUNDS = 64
_FIELD_PARTS = re.compile(r"[.\[\]{}:!]")


class _GenerationTag(Extension):
    """transformers' `{% generation %}...{% endgeneration %}` marker, parsed as a plain scope."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def check_template(source: str, *, location: str) -> list[Finding]:
    """Findings for one chat template's source. An empty list means nothing in it can reach
    Python internals, whether or not the consumer renders it in a sandbox."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        # the extensions transformers enables: `break`/`continue` and `generation` appear in
        # real templates; `do` is accepted so that its expression gets checked like any other
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag],
    )
    try:
        tree = environment.parse(source)
        return _Analysis(tree, location).run()
    except TemplateError as exc:
        message = f"template does not parse: {exc}"
    except RecursionError:
        message = "template is nested too deeply to analyse"
    return [Finding(MALFORMED, Severity.HIGH, message, location)]


def _walk(tree: nodes.Node) -> Iterator[tuple[nodes.Node, nodes.Node | None]]:
    """Every node with its parent, without recursion (deep trees must not exhaust the stack)."""
    stack: list[tuple[nodes.Node, nodes.Node | None]] = [(tree, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        stack.extend((child, node) for child in reversed(list(node.iter_child_nodes())))


def _is_forbidden(name: str) -> bool:
    return name.startswith("_") or "__" in name or name in INTERNAL_ATTRIBUTES


def _is_constant_key(key: nodes.Expr) -> bool:
    if isinstance(key, nodes.Neg | nodes.Pos):
        key = key.node
    return isinstance(key, nodes.Const | nodes.Slice)


def _target_names(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple | nodes.List):
        return [name for item in target.items for name in _target_names(item)]
    return []


# An assignment: a name and where its value may come from (None: from somewhere unknowable).
_Source = nodes.Node | None


class _Analysis:
    def __init__(self, tree: nodes.Template, location: str) -> None:
        self._tree = tree
        self._location = location
        self._findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()
        self._assignments: list[tuple[str, _Source]] = []
        self._exact: dict[str, list[nodes.Node]] = {}  # `set` and `with` values, for folding
        self._assignment_counts: dict[str, int] = {}
        self._folded: dict[int, str | None] = {}
        self._macros: dict[str, nodes.Macro] = {}
        self._loop_sources: list[nodes.Node] = []
        self._bound: set[str] = set()
        self._params: set[str] = set()
        self._tainted: dict[str, bool] = {}

    def run(self) -> list[Finding]:
        pairs = list(_walk(self._tree))
        for node, parent in pairs:
            self._collect(node, parent)
        for name, _ in self._assignments:
            self._assignment_counts[name] = self._assignment_counts.get(name, 0) + 1
        self._bound = set(self._assignment_counts) | set(self._macros)
        self._params = {arg.name for macro in self._macros.values() for arg in macro.args}
        self._bound |= self._params
        self._solve()
        for node, parent in pairs:
            self._check(node, parent)
        return self._findings

    # -- pass 1: where every template variable gets its value --------------------------------

    def _collect(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        if isinstance(node, nodes.Assign):
            if isinstance(node.target, nodes.NSRef):
                self._assignments.append(("." + node.target.attr, node.node))
            for name in _target_names(node.target):
                self._assignments.append((name, node.node))
                if isinstance(node.target, nodes.Name):
                    self._exact.setdefault(name, []).append(node.node)
        elif isinstance(node, nodes.AssignBlock):  # the value is rendered template text
            for name in _target_names(node.target):
                self._assignments.append((name, None))
            if isinstance(node.target, nodes.NSRef):
                self._assignments.append(("." + node.target.attr, None))
        elif isinstance(node, nodes.For):
            self._loop_sources.append(node.iter)
            for name in _target_names(node.target):
                self._assignments.append((name, node.iter))
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=False):
                for name in _target_names(target):
                    self._assignments.append((name, value))
                    if isinstance(target, nodes.Name):
                        self._exact.setdefault(name, []).append(value)
        elif isinstance(node, nodes.Macro):
            self._macros[node.name] = node
            first_default = len(node.args) - len(node.defaults)
            for index, arg in enumerate(node.args):
                if index >= first_default:
                    self._assignments.append((arg.name, node.defaults[index - first_default]))
        elif isinstance(node, nodes.CallBlock):
            for arg in node.args:
                self._assignments.append((arg.name, None))
        elif isinstance(node, nodes.Import):
            self._assignments.append((node.target, None))
        elif isinstance(node, nodes.FromImport):
            for entry in node.names:
                self._assignments.append((entry if isinstance(entry, str) else entry[1], None))
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            self._collect_macro_use(node, parent)

    def _collect_macro_use(self, name: nodes.Name, parent: nodes.Node | None) -> None:
        """Macro parameters get whatever the call sites pass; a macro passed around as a value
        may be called with anything."""
        if not isinstance(parent, nodes.Call) or parent.node is not name:
            self._assignments.append((f"macro:{name.name}", None))
            return
        call = parent
        if call.dyn_args is not None or call.dyn_kwargs is not None:
            self._assignments.append((f"macro:{name.name}", None))
        for index, arg in enumerate(call.args):
            self._assignments.append((f"macro:{name.name}#{index}", arg))
        for keyword in call.kwargs:
            self._assignments.append((f"macro:{name.name}={keyword.key}", keyword.value))

    def _solve(self) -> None:
        """Which variables may hold a string the template built: the least fixpoint over all
        assignments, scopes ignored (a union, so an over-approximation)."""
        for name in self._bound:
            self._tainted[name] = self._free_name_tainted(name)
        for macro in self._macros.values():  # parameters from the call sites
            for index, arg in enumerate(macro.args):
                self._macro_params(macro.name, index, arg.name)
        for _ in range(MAX_FIXPOINT_ROUNDS):
            changed = False
            for name, source in self._assignments:
                if self._tainted.get(name, False):
                    continue
                if source is None or self._expr_tainted(source):
                    self._tainted[name] = True
                    changed = True
            for macro in self._macros.values():
                changed |= self._propagate_macro(macro)
            if not changed:
                return
        self._tainted = dict.fromkeys(self._tainted, True)  # did not settle: trust nothing

    def _macro_params(self, macro: str, index: int, param: str) -> None:
        for key in (f"macro:{macro}#{index}", f"macro:{macro}={param}", f"macro:{macro}"):
            self._tainted.setdefault(key, False)

    def _propagate_macro(self, macro: nodes.Macro) -> bool:
        changed = False
        for index, arg in enumerate(macro.args):
            sources = (f"macro:{macro.name}#{index}", f"macro:{macro.name}={arg.name}")
            escaped = self._tainted.get(f"macro:{macro.name}", False)
            if not self._tainted.get(arg.name, False) and (
                escaped or any(self._tainted.get(key, False) for key in sources)
            ):
                self._tainted[arg.name] = True
                changed = True
        return changed

    def _free_name_tainted(self, name: str) -> bool:
        return (
            name in ROOTS
            or name in CONTEXT_FUNCTIONS
            or name in MACRO_SPECIALS
            or name.endswith("_token")  # special tokens come from the model's own metadata
        )

    def _name_tainted(self, name: str) -> bool:
        if name in self._macros:
            return True  # a macro's repr, or its rendered output
        if name in self._tainted:
            return self._tainted[name]
        return self._free_name_tainted(name)

    # -- whether an expression may evaluate to a string the template spelled ------------------

    def _expr_tainted(self, expr: nodes.Node) -> bool:
        if isinstance(expr, nodes.Const):
            value = expr.value
            return isinstance(value, str) and ("_" in value or "%" in value)
        if isinstance(expr, nodes.Name):
            return self._name_tainted(expr.name)
        if isinstance(expr, nodes.Test | nodes.Compare | nodes.Not):
            return False
        if isinstance(expr, nodes.Mod):  # printf formatting: only numbers stay numbers
            return True
        if isinstance(expr, nodes.BinExpr):
            return self._expr_tainted(expr.left) or self._expr_tainted(expr.right)
        if isinstance(expr, nodes.UnaryExpr):
            return self._expr_tainted(expr.node)
        if isinstance(expr, nodes.Concat):
            return any(self._expr_tainted(part) for part in expr.nodes)
        if isinstance(expr, nodes.CondExpr):
            return self._expr_tainted(expr.expr1) or (
                expr.expr2 is not None and self._expr_tainted(expr.expr2)
            )
        if isinstance(expr, nodes.Tuple | nodes.List):
            return any(self._expr_tainted(item) for item in expr.items)
        if isinstance(expr, nodes.Dict):
            return any(
                self._expr_tainted(pair.key) or self._expr_tainted(pair.value)
                for pair in expr.items
            )
        if isinstance(expr, nodes.Slice):
            return False
        if isinstance(expr, nodes.Getitem):
            if not _is_constant_key(expr.arg) and self._expr_tainted(expr.arg):
                return True
            return self._expr_tainted(expr.node)
        if isinstance(expr, nodes.Getattr):
            return self._getattr_tainted(expr)
        if isinstance(expr, nodes.Filter):
            return self._filter_tainted(expr)
        if isinstance(expr, nodes.Call):
            return self._call_tainted(expr)
        return True  # anything else is not a plain value

    def _getattr_tainted(self, expr: nodes.Getattr) -> bool:
        if expr.attr in _UNDERSCORE_METHODS:
            return True
        if isinstance(expr.node, nodes.Name):
            if expr.node.name == "loop" and "loop" not in self._bound:
                if expr.attr in LOOP_NUMBERS:
                    return False
                return any(self._expr_tainted(source) for source in self._loop_sources)
            if self._tainted.get("." + expr.attr, False):  # set by `{% set ns.attr = ... %}`
                return True
        return self._expr_tainted(expr.node)

    def _arguments_tainted(self, call: nodes.Call | nodes.Filter) -> bool:
        return (
            call.dyn_args is not None
            or call.dyn_kwargs is not None
            or any(self._expr_tainted(arg) for arg in call.args)
            or any(self._expr_tainted(keyword.value) for keyword in call.kwargs)
        )

    def _filter_tainted(self, expr: nodes.Filter) -> bool:
        if expr.name in NUMERIC_FILTERS:
            return False
        if expr.name not in SAFE_FILTERS or expr.node is None:
            return True
        return self._expr_tainted(expr.node) or self._arguments_tainted(expr)

    def _call_tainted(self, expr: nodes.Call) -> bool:
        callee = expr.node
        if isinstance(callee, nodes.Name) and callee.name not in self._bound:
            if callee.name in {"range", "raise_exception"}:
                return False
            if callee.name in {"namespace", "dict", "strftime_now"}:
                return self._arguments_tainted(expr)
            return True
        if isinstance(callee, nodes.Getattr) and callee.attr in SAFE_METHODS:
            return self._expr_tainted(callee.node) or self._arguments_tainted(expr)
        return True

    # -- constant folding, to name the attribute a built key spells ---------------------------

    def _fold(self, expr: nodes.Node, depth: int = 0) -> str | None:
        """The string `expr` always evaluates to, when the template spells it out; else None."""
        if id(expr) not in self._folded:
            self._folded[id(expr)] = self._fold_uncached(expr, depth)
        return self._folded[id(expr)]

    def _fold_uncached(self, expr: nodes.Node, depth: int) -> str | None:
        if depth > MAX_FOLD_DEPTH:
            return None
        result: str | None = None
        if isinstance(expr, nodes.Const):
            result = expr.value if isinstance(expr.value, str) else None
        elif isinstance(expr, nodes.Name):
            # only a name set exactly once, by `set` or `with`, has a value known here
            exact = self._exact.get(expr.name, [])
            count = self._assignment_counts.get(expr.name, 0)
            if count == 1 and len(exact) == 1 and expr.name not in self._params:
                result = self._fold(exact[0], depth + 1)
        elif isinstance(expr, nodes.Concat | nodes.Add):
            parts = expr.nodes if isinstance(expr, nodes.Concat) else [expr.left, expr.right]
            folded = [self._fold(part, depth + 1) for part in parts]
            result = None if None in folded else "".join(p for p in folded if p is not None)
        elif isinstance(expr, nodes.Filter) and expr.node is not None:
            result = self._fold_filter(expr, depth)
        if result is not None and len(result) > MAX_FOLDED_CHARS:
            return None
        return result

    def _fold_filter(self, expr: nodes.Filter, depth: int) -> str | None:
        assert expr.node is not None
        args = [self._fold(arg, depth + 1) for arg in expr.args]
        if None in args or expr.kwargs or expr.dyn_args or expr.dyn_kwargs:
            return None
        if expr.name == "join" and isinstance(expr.node, nodes.List | nodes.Tuple):
            items = [self._fold(item, depth + 1) for item in expr.node.items]
            if None in items or len(args) > 1:
                return None
            separator = args[0] if args and args[0] is not None else ""
            return separator.join(item for item in items if item is not None)
        value = self._fold(expr.node, depth + 1)
        if value is None:
            return None
        if expr.name == "replace" and len(args) == 2 and len(value) < MAX_FOLDED_CHARS:
            old, new = args
            assert old is not None and new is not None
            return value.replace(old, new, MAX_FOLDED_CHARS)
        if args:
            return None
        if expr.name == "reverse":
            return value[::-1]
        if expr.name in {"lower", "upper"}:
            return value.lower() if expr.name == "lower" else value.upper()
        if expr.name in {"trim", "string"}:
            return value.strip() if expr.name == "trim" else value
        return None

    # -- pass 3: the rules --------------------------------------------------------------------

    def _check(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        if isinstance(node, nodes.Getattr):
            self._check_name(node.attr, f"attribute .{node.attr}")
            self._check_root(node.node, f"attribute .{node.attr}")
        elif isinstance(node, nodes.Getitem):
            self._check_getitem(node)
        elif isinstance(node, nodes.NSRef):
            self._check_name(node.attr, f"namespace attribute .{node.attr}")
        elif isinstance(node, nodes.Filter):
            self._check_filter(node)
        elif isinstance(node, nodes.Call):
            self._check_format(node)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name in FORBIDDEN_ROOTS and node.name not in self._bound:
                self._report(SSTI, Severity.CRITICAL, f"uses {node.name!r}, a classic SSTI root")
        elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            kind = type(node).__name__.lower()
            self._report(INCLUDE, Severity.HIGH, f"{kind} loads another template")

    def _check_name(self, name: str, what: str) -> bool:
        if _is_forbidden(name):
            self._report(SSTI, Severity.CRITICAL, f"{what} names internal attribute {name!r}")
            return True
        return False

    def _check_root(self, base: nodes.Node, what: str) -> None:
        if isinstance(base, nodes.Name) and base.name in ROOTS and base.name not in self._bound:
            self._report(
                SSTI, Severity.CRITICAL, f"{what} taken from {base.name!r}, a classic SSTI root"
            )

    def _check_getitem(self, node: nodes.Getitem) -> None:
        key = node.arg
        self._check_root(node.node, "item access")
        if isinstance(key, nodes.Const):
            if isinstance(key.value, str):
                self._check_name(key.value, f"item [{key.value!r}]")
            return
        if _is_constant_key(key):
            return
        self._check_built_name(key, "item key")

    def _check_built_name(self, key: nodes.Expr, what: str) -> None:
        """A key or attribute name computed at render time."""
        folded = self._fold(key)
        if folded is not None:
            for part in folded.split("."):
                if self._check_name(part, f"{what} built as {folded!r}"):
                    return
            return
        if self._expr_tainted(key):
            self._report(
                DYNAMIC,
                Severity.HIGH,
                f"{what} is computed from strings the template builds; it may name any attribute",
            )

    def _check_filter(self, node: nodes.Filter) -> None:
        if node.name == "attr":
            if node.node is not None:
                self._check_root(node.node, "attr filter")
            if node.args:
                self._check_attr_argument(node.args[0], "attr filter")
            return
        if node.name == "map":
            if node.args and isinstance(node.args[0], nodes.Const) and node.args[0].value == "attr":
                if len(node.args) > 1:
                    self._check_attr_argument(node.args[1], "map('attr') filter")
            elif node.args and not isinstance(node.args[0], nodes.Const):
                self._report(DYNAMIC, Severity.HIGH, "map filter applies a computed filter name")
        if node.name in ATTRIBUTE_ARGUMENT:
            for argument in self._attribute_arguments(node):
                self._check_attribute_path(argument, f"{node.name} filter attribute")

    def _attribute_arguments(self, node: nodes.Filter) -> Iterator[nodes.Expr]:
        position = ATTRIBUTE_ARGUMENT[node.name]
        if position is not None and len(node.args) > position:
            yield node.args[position]
        for keyword in node.kwargs:
            if keyword.key == "attribute":
                yield keyword.value

    def _check_attr_argument(self, argument: nodes.Expr, what: str) -> None:
        if isinstance(argument, nodes.Const):
            if isinstance(argument.value, str):
                self._check_name(argument.value, what)
            return
        folded = self._fold(argument)
        shown = f" (it spells {folded!r})" if folded is not None else ""
        if folded is None or not self._check_name(folded, f"{what} built as {folded!r}"):
            self._report(SSTI, Severity.CRITICAL, f"{what} with a computed name{shown}")

    def _check_attribute_path(self, argument: nodes.Expr, what: str) -> None:
        if isinstance(argument, nodes.Const):
            if isinstance(argument.value, str):
                for part in argument.value.split("."):
                    if self._check_name(part, what):
                        return
            return
        self._check_built_name(argument, what)

    def _check_format(self, node: nodes.Call) -> None:
        """`'{0.__class__}'.format(x)` walks attributes from inside a string."""
        callee = node.node
        if not isinstance(callee, nodes.Getattr) or callee.attr not in {"format", "format_map"}:
            return
        spelled = self._fold(callee.node)
        if spelled is None:
            if self._expr_tainted(callee.node):
                self._report(DYNAMIC, Severity.HIGH, "str.format with a computed format string")
            return
        for field in _format_fields(spelled):
            for part in _FIELD_PARTS.split(field):
                if part and not part.isdigit() and self._check_name(part, "str.format field"):
                    return

    def _report(self, rule: str, severity: Severity, message: str) -> None:
        if (rule, message) not in self._seen:
            self._seen.add((rule, message))
            self._findings.append(Finding(rule, severity, message, self._location))


def _format_fields(spelled: str) -> Sequence[str]:
    """The replacement fields (and format specs) of a str.format string; all of it when the
    string does not parse, so nothing hides behind a syntax error."""
    try:
        return [
            f"{name}:{spec}"
            for _, name, spec, _ in string.Formatter().parse(spelled)
            if name is not None
        ]
    except ValueError:
        return [spelled]
