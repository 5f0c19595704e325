"""Which names a block of notebook cells reads from outside and which it leaves behind.

Pure static analysis with `ast` (Kale uses pyflakes for the same question). For the
cells of one step, taken in order, it finds:

* `uses`: names read before the step binds them (its inputs, if another step made them);
* `defs`: names the step binds or mutates (`x = ...`, `x += ...`, `df.col = ...`,
  `d[k] = ...`, `lst.append(...)`, `model.fit(...)`, `global x` in a called function);
* `deleted`: names whose last touch in the step is `del x`;
* `imported`: names whose last binding is an import statement (re-imported, never pickled).

Python scoping is followed: function and lambda bodies are read when called, so the
names they read count unless the step binds them anywhere; comprehension targets,
parameters and function locals stay local; class bodies run at once.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook.tags import cell_label

# Names a step has without defining them: builtins plus IPython's `display`, which the
# step runtime provides. Kernel-only names (get_ipython, In, Out) are left out on
# purpose: a step has no kernel, so using them is reported at compile time.
BUILTIN_NAMES = frozenset(dir(builtins)) | {"__name__", "__doc__", "__builtins__", "display"}

# A bare call `x.m(...)` whose result is dropped is taken as mutating `x` (append,
# fit, update, ...), except for these methods that only read or display. As the last
# line of a cell a bare call is usually there to show its result (`df.sort_values("a")`),
# so there only MUTATING_METHODS (or `inplace=True`) count.
READ_ONLY_METHODS = frozenset(
    {
        "head", "tail", "describe", "info", "show", "plot", "hist", "boxplot", "summary",
        "print", "display", "sample", "copy", "count", "index", "get", "keys", "values",
        "items", "mean", "median", "sum", "min", "max", "std", "var", "nunique", "unique",
        "value_counts", "isna", "isnull", "notna", "to_csv", "to_json", "to_parquet",
        "to_pickle", "to_excel", "to_dict", "to_list", "tolist", "savefig", "save", "dump",
        "write", "predict", "predict_proba", "score", "evaluate", "get_params", "item",
        "numpy", "close", "flush", "format", "join", "split", "startswith", "endswith",
    }
)  # fmt: skip

MUTATING_METHODS = frozenset(
    {
        "fit", "partial_fit", "fit_transform", "fit_predict", "set_params", "append", "extend",
        "insert", "remove", "pop", "popitem", "clear", "update", "setdefault", "add", "discard",
        "sort", "reverse", "load_state_dict", "train", "eval", "to", "zero_grad", "step",
        "requires_grad_", "seed", "shuffle", "apply_", "fill_", "zero_", "set_index",
        "compile", "build", "load", "load_weights", "__setitem__", "__delitem__",
    }
)  # fmt: skip

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class BlockNames:
    """Result of analysing the cells of one step (or one imports/functions group)."""

    uses: dict[str, int] = field(default_factory=dict)  # name -> cell of first free read
    defs: dict[str, int] = field(default_factory=dict)  # name -> cell of last definition
    deleted: dict[str, int] = field(default_factory=dict)  # name -> cell of the `del`
    imported: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (cell, stmt)
    bound: set[str] = field(default_factory=set)  # every name ever bound at top level
    star_import: bool = False


def _root_name(node: ast.expr) -> str | None:
    """`a` for `a`, `a.b.c`, `a[0].b` (the variable an attribute/item write mutates)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


class _ScopeNames:
    """Free reads and global writes of a nested scope (function, lambda, class, comprehension).

    Order inside a function does not matter for us, so this is a set computation.
    """

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.nested_free: set[str] = set()  # free names of nested scopes
        self.global_writes: set[str] = set()
        self.enclosing_stores: set[str] = set()  # walrus inside a comprehension

    def walk(self, node: ast.AST) -> None:
        """Collect names of `node` in this scope, recursing into nested scopes."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.stores.add(node.name)
            for part in _evaluated_at_definition(node):
                self.walk(part)
            self._nested(node)
        elif isinstance(node, ast.Lambda):
            for part in _evaluated_at_definition(node):
                self.walk(part)
            self._nested(node)
        elif isinstance(node, _COMPREHENSIONS):
            self.walk(node.generators[0].iter)
            self._nested(node)
        elif isinstance(node, ast.Name):
            (self.loads if isinstance(node.ctx, ast.Load) else self.stores).add(node.id)
        elif isinstance(node, ast.Global):
            self.globals.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            self.nonlocals.update(node.names)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    self.stores.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            self.stores.add(node.name)
            for child in ast.iter_child_nodes(node):
                self.walk(child)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.stores.add(node.rest)
            for child in ast.iter_child_nodes(node):
                self.walk(child)
        else:
            for child in ast.iter_child_nodes(node):
                self.walk(child)

    def _nested(self, node: ast.AST) -> None:
        free, global_writes, enclosing = scope_free_names(node)
        self.nested_free |= free
        self.global_writes |= global_writes
        self.stores |= enclosing

    def free(self, params: set[str]) -> set[str]:
        local = (self.stores | params) - self.globals
        return (self.loads | self.nested_free) - local - self.nonlocals


def _evaluated_at_definition(node: ast.AST) -> list[ast.AST]:
    """Parts of a def/class/lambda evaluated where it is defined, not when called."""
    parts: list[ast.AST] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        args = node.args
        parts += [d for d in args.defaults] + [d for d in args.kw_defaults if d is not None]
        if not isinstance(node, ast.Lambda):
            parts += list(node.decorator_list)
            all_args = args.posonlyargs + args.args + args.kwonlyargs
            all_args += [a for a in (args.vararg, args.kwarg) if a]
            parts += [a.annotation for a in all_args if a.annotation is not None]
            if node.returns is not None:
                parts.append(node.returns)
    elif isinstance(node, ast.ClassDef):
        parts += list(node.decorator_list) + list(node.bases)
        parts += [k.value for k in node.keywords]
    return parts


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a]
    return set(names)


def scope_free_names(node: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(free names read, names written through `global`, walrus targets leaking out)."""
    scope = _ScopeNames()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        for stmt in node.body:
            scope.walk(stmt)
        free = scope.free(_params(node))
        global_writes = scope.global_writes | (scope.stores & scope.globals)
        return free, global_writes, set()
    if isinstance(node, ast.Lambda):
        scope.walk(node.body)
        return scope.free(_params(node)), scope.global_writes, set()
    if isinstance(node, ast.ClassDef):
        # Methods do not see class-level names, so their free names pass straight out.
        for stmt in node.body:
            scope.walk(stmt)
        free = (scope.loads - (scope.stores - scope.globals)) | scope.nested_free
        return free, scope.global_writes | (scope.stores & scope.globals), set()
    if isinstance(node, _COMPREHENSIONS):
        targets: set[str] = set()
        for i, gen in enumerate(node.generators):
            targets.update(_target_names(gen.target))
            if i:
                scope.walk(gen.iter)
            for cond in gen.ifs:
                scope.walk(cond)
        if isinstance(node, ast.DictComp):
            scope.walk(node.key)
            scope.walk(node.value)
        else:
            scope.walk(node.elt)
        walrus = scope.stores - targets
        free = (scope.loads | scope.nested_free) - targets - walrus
        return free, scope.global_writes, walrus
    raise TypeError(f"not a scope: {type(node).__name__}")


class BlockAnalyzer:
    """Walks the cells of one block in order, tracking what is bound so far."""

    def __init__(self) -> None:
        self.result = BlockNames()
        self._bound_now: set[str] = set()
        self._deferred: list[tuple[str, int]] = []  # reads inside functions/lambdas
        self._cell = -1
        self._last_stmt: ast.stmt | None = None

    # -- events -----------------------------------------------------------------
    def _use(self, name: str) -> None:
        if name not in self._bound_now and name not in self.result.uses:
            self.result.uses[name] = self._cell

    def _define(self, name: str) -> None:
        self._bound_now.add(name)
        self.result.bound.add(name)
        self.result.defs[name] = self._cell
        self.result.deleted.pop(name, None)
        self.result.imported.pop(name, None)

    def _mutate(self, name: str) -> None:
        if name in self.result.imported:
            return  # `np.random.seed(0)` mutates a module, which is never passed on
        self._use(name)
        self.result.defs[name] = self._cell
        self.result.deleted.pop(name, None)

    def _delete(self, name: str) -> None:
        self._use(name)
        self._bound_now.discard(name)
        self.result.defs.pop(name, None)
        self.result.imported.pop(name, None)
        self.result.deleted[name] = self._cell

    def _import(self, name: str, statement: str) -> None:
        self._define(name)
        del self.result.defs[name]
        self.result.imported[name] = (self._cell, statement)

    # -- entry points -------------------------------------------------------------
    def add_cell(self, cell: int, tree: ast.Module) -> None:
        self._cell = cell
        self._last_stmt = tree.body[-1] if tree.body else None
        for stmt in tree.body:
            self._stmt(stmt)

    def finish(self) -> BlockNames:
        """Resolve reads made inside functions: fine if the block binds them anywhere."""
        for name, cell in self._deferred:
            if name not in self.result.bound and name not in self.result.uses:
                self.result.uses[name] = cell
        return self.result

    # -- statements -----------------------------------------------------------------
    def _stmt(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            self._expr(node.value)
            for target in node.targets:
                self._store(target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self._expr(node.value)
                self._store(node.target)
            self._expr(node.annotation)
        elif isinstance(node, ast.AugAssign):
            self._expr(node.value)
            if isinstance(node.target, ast.Name):
                self._use(node.target.id)
                self._define(node.target.id)
            else:
                self._store(node.target)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self._delete(target.id)
                elif isinstance(target, ast.Tuple | ast.List):
                    for name in _target_names(target):
                        self._delete(name)
                else:
                    self._store(target)  # del d[k] mutates d
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    self.result.star_import = True
                    continue
                bound = (alias.asname or alias.name).split(".")[0]
                if isinstance(node, ast.Import):
                    stmt = f"import {alias.name}"
                else:
                    stmt = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                if alias.asname:
                    stmt += f" as {alias.asname}"
                self._import(bound, stmt)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for part in _evaluated_at_definition(node):
                self._expr(part)
            free, global_writes, _ = scope_free_names(node)
            if isinstance(node, ast.ClassDef):
                # The class body runs now; its methods' reads are deferred like functions.
                for name in sorted(free):
                    self._deferred.append((name, self._cell))
            else:
                self._deferred.extend((name, self._cell) for name in sorted(free))
            for name in sorted(global_writes):
                self._define(name)
            self._define(node.name)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._expr(node.iter)
            self._store(node.target)
            for stmt in node.body + node.orelse:
                self._stmt(stmt)
        elif isinstance(node, ast.While | ast.If):
            self._expr(node.test)
            for stmt in node.body + node.orelse:
                self._stmt(stmt)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self._expr(item.context_expr)
                if item.optional_vars is not None:
                    self._store(item.optional_vars)
            for stmt in node.body:
                self._stmt(stmt)
        elif isinstance(node, ast.Try | ast.TryStar):
            for stmt in node.body:
                self._stmt(stmt)
            for handler in node.handlers:
                if handler.type is not None:
                    self._expr(handler.type)
                if handler.name:
                    self._define(handler.name)
                for stmt in handler.body:
                    self._stmt(stmt)
            for stmt in node.orelse + node.finalbody:
                self._stmt(stmt)
        elif isinstance(node, ast.Match):
            self._expr(node.subject)
            for case in node.cases:
                self._pattern(case.pattern)
                if case.guard is not None:
                    self._expr(case.guard)
                for stmt in case.body:
                    self._stmt(stmt)
        elif isinstance(node, ast.Expr):
            self._expr(node.value)
            call = node.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                method = call.func.attr
                inplace = any(
                    k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value
                    for k in call.keywords
                )
                if node is self._last_stmt:
                    mutates = method in MUTATING_METHODS or inplace
                else:
                    mutates = method not in READ_ONLY_METHODS or inplace
                root = _root_name(call.func.value)
                if mutates and root is not None:
                    self._mutate(root)
        elif isinstance(node, ast.Global | ast.Nonlocal | ast.Pass | ast.Break | ast.Continue):
            pass
        else:  # Return, Raise, Assert, ...: plain reads
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self._expr(child)
                elif isinstance(child, ast.stmt):
                    self._stmt(child)

    def _pattern(self, pattern: ast.pattern) -> None:
        for node in ast.walk(pattern):
            if isinstance(node, ast.MatchValue | ast.MatchClass):
                value = node.value if isinstance(node, ast.MatchValue) else node.cls
                self._expr(value)
            if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
                self._define(node.name)
            if isinstance(node, ast.MatchMapping):
                for key in node.keys:
                    self._expr(key)
                if node.rest:
                    self._define(node.rest)

    def _store(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._define(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._store(elt)
        elif isinstance(target, ast.Starred):
            self._store(target.value)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            # `df.x = ...` / `d[k] = ...` read the object (and the key), then change it.
            self._expr(target.value)
            if isinstance(target, ast.Subscript):
                self._expr(target.slice)
            root = _root_name(target)
            if root is not None:
                self._mutate(root)

    def _expr(self, node: ast.AST) -> None:
        """Reads in an expression, in evaluation order, respecting nested scopes."""
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self._use(node.id)
            else:
                self._define(node.id)
        elif isinstance(node, ast.NamedExpr):
            self._expr(node.value)
            self._define(node.target.id)
        elif isinstance(node, ast.Lambda):
            for part in _evaluated_at_definition(node):
                self._expr(part)
            free, global_writes, _ = scope_free_names(node)
            self._deferred.extend((name, self._cell) for name in sorted(free))
            for name in sorted(global_writes):
                self._define(name)
        elif isinstance(node, _COMPREHENSIONS):
            self._expr(node.generators[0].iter)
            free, global_writes, walrus = scope_free_names(node)
            for name in sorted(free):
                self._use(name)
            for name in sorted(global_writes | walrus):
                self._define(name)
        else:
            for child in ast.iter_child_nodes(node):
                self._expr(child)


def parse_cell(source: str, *, cell: int, step: str | None) -> ast.Module:
    """Parse one cell, turning a SyntaxError into an error that names the cell and line."""
    try:
        return ast.parse(source, filename=f"<notebook {cell_label(cell)}>")
    except SyntaxError as error:
        where = cell_label(cell) + (f" (step {step})" if step else "")
        raise KubelabError(
            f"{where}, line {error.lineno}: syntax error: {error.msg}",
            cell=cell,
            step=step,
            line=error.lineno,
        ) from None


def analyze_block(cells: list[tuple[int, ast.Module]]) -> BlockNames:
    """Names read and left behind by cells run one after the other in one namespace."""
    analyzer = BlockAnalyzer()
    for cell, tree in cells:
        analyzer.add_cell(cell, tree)
    return analyzer.finish()
