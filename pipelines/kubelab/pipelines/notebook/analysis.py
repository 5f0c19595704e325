"""Which names a block of notebook cells reads from outside and which it leaves behind.

Pure static analysis with `ast` (Kale uses pyflakes for the same question). For the
cells of one step, taken in order, it finds:

* `uses`: names read before the step binds them (its inputs, if another step made them);
* `defs`: names the step binds or mutates (`x = ...`, `x += ...`, `df.col = ...`,
  `d[k] = ...`, `lst.append(...)`, `model.fit(...)`, `global x` in a called function),
  including changes the code makes through an alias (`data = [a, b]`, then
  `for d in data: d["x"] = 1` changes `a` and `b`) or through a call that changes its
  argument (`random.shuffle(xs)`, `train(model)` where `train` appends to `model`);
* `deleted`: names whose last touch in the step is `del x`;
* `imported`: names whose last binding is an import statement (re-imported, never pickled).

Python scoping is followed: function and lambda bodies are read when called, so the
names they read count unless the step binds them anywhere; comprehension targets,
parameters and function locals stay local; class bodies run at once.

What a call does to its arguments is read from the callee where the notebook defines
it (`function_effects`: which parameters and globals its body changes or reads);
library functions change nothing but their first argument when their name says so
(`shuffle`, `copyto`, `heappush`, torch's `normal_`), and a function whose code we
cannot see (a module beside the notebook, a value called) may change any name passed
to it. Over-approximating costs a hand-on, never a wrong value.
"""

from __future__ import annotations

import ast
import builtins
import sys
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

# Library functions (and methods such as `rng.shuffle`) that change their first
# argument in place; torch's in-place functions end with one underscore (`normal_`).
ARGUMENT_MUTATORS = frozenset(
    {
        "shuffle", "copyto", "put", "place", "putmask", "put_along_axis", "fill_diagonal",
        "heappush", "heappop", "heapify", "heapreplace", "heappushpop", "insort",
        "insort_left", "insort_right", "setattr", "delattr",
    }
)  # fmt: skip

# Modules whose functions follow the convention above: the standard library and the
# usual data-science libraries. A function from any other module (e.g. `helpers.py`
# beside the notebook) may change whatever is passed to it.
LIBRARY_MODULES = frozenset(sys.stdlib_module_names) | frozenset(
    {
        "numpy", "pandas", "sklearn", "scipy", "matplotlib", "seaborn", "torch",
        "torchvision", "torchaudio", "tensorflow", "keras", "xgboost", "lightgbm", "catboost",
        "statsmodels", "plotly", "PIL", "cv2", "skimage", "joblib", "cloudpickle", "tqdm",
        "requests", "transformers", "datasets", "tokenizers", "nltk", "spacy", "pyarrow",
        "polars", "dask", "sympy", "networkx", "bokeh", "altair", "optuna", "mlflow",
        "IPython", "ipywidgets", "kfp", "kubelab", "yaml", "jax", "flax", "einops",
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
    assigned: set[str] = field(default_factory=set)  # names rebound (not only changed)
    mutated: set[str] = field(default_factory=set)  # names changed in place
    star_import: bool = False


@dataclass(frozen=True)
class CallEffects:
    """What calling a notebook-defined function (or class) does to the caller's names."""

    params: tuple[str, ...] = ()  # positional parameters, in order
    vararg: str | None = None
    kwarg: str | None = None
    mutated: frozenset[str] = frozenset()  # parameters the body changes in place
    globals_mutated: frozenset[str] = frozenset()  # notebook names the body changes
    globals_read: frozenset[str] = frozenset()  # notebook names the body reads

    def union(self, other: CallEffects) -> CallEffects:
        """Two definitions of one name (in different steps): either may run."""
        return CallEffects(
            self.params if len(self.params) >= len(other.params) else other.params,
            self.vararg or other.vararg,
            self.kwarg or other.kwarg,
            self.mutated | other.mutated,
            self.globals_mutated | other.globals_mutated,
            self.globals_read | other.globals_read,
        )


@dataclass
class Context:
    """What a block's calls resolve against: the notebook's functions and its imports."""

    effects: dict[str, CallEffects] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # name -> what it imports
    fixed: frozenset[str] = frozenset()  # prelude functions/classes: never handed on


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

    def __init__(self, context: Context | None = None) -> None:
        self.result = BlockNames()
        self.context = context or Context()
        self._bound_now: set[str] = set()
        self._deferred: list[tuple[str, int]] = []  # reads inside functions/lambdas
        self._aliases: dict[str, set[str]] = {}  # name -> names whose objects it may hold
        self._imports: dict[str, str] = {}  # name -> module (or module.attr) it imports
        self._cell = -1
        self._last_stmt: ast.stmt | None = None
        self._statement_call: ast.Call | None = None  # a call whose result is dropped

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
        self._imports.pop(name, None)

    def _assign(self, name: str) -> None:
        self._define(name)
        self.result.assigned.add(name)

    def _mutate(self, name: str) -> None:
        """`name`'s object changes in place, and so do the objects it may alias."""
        for target in (name, *sorted(self._aliases.get(name, ()))):
            if self._is_module(target) or target in self.context.fixed:
                continue  # `np.random.seed(0)` changes a module, never handed on
            self._use(target)
            self.result.defs[target] = self._cell
            self.result.mutated.add(target)
            self.result.deleted.pop(target, None)

    def _delete(self, name: str) -> None:
        self._use(name)
        self._bound_now.discard(name)
        self.result.defs.pop(name, None)
        self.result.imported.pop(name, None)
        self._aliases.pop(name, None)
        self.result.deleted[name] = self._cell

    def _import(self, name: str, statement: str, module: str) -> None:
        self._define(name)
        del self.result.defs[name]
        self.result.imported[name] = (self._cell, statement)
        self._imports[name] = module
        self._aliases.pop(name, None)

    def _is_module(self, name: str) -> bool:
        if name in self._bound_now and name not in self._imports:
            return False
        return name in self._imports or name in self.context.modules

    def _module_of(self, name: str) -> str | None:
        if name in self._imports:
            return self._imports[name]
        if name in self._bound_now:
            return None
        return self.context.modules.get(name)

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

    # -- aliases ----------------------------------------------------------------------
    def _alias_roots(self, node: ast.AST | None) -> set[str]:
        """Names whose objects the value of `node` may be, or contain."""
        if isinstance(node, ast.Name):
            return {node.id} | self._aliases.get(node.id, set())
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return set().union(*(self._alias_roots(e) for e in node.elts))
        if isinstance(node, ast.Dict):
            return set().union(*(self._alias_roots(v) for v in node.values))
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
            return self._alias_roots(node.value)
        if isinstance(node, ast.IfExp):
            return self._alias_roots(node.body) | self._alias_roots(node.orelse)
        if isinstance(node, ast.NamedExpr):
            return self._alias_roots(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            # d.values(), d.items(): the elements; zip/enumerate/list(...): the same objects.
            if isinstance(func, ast.Attribute) and func.attr in ("values", "items"):
                return self._alias_roots(func.value)
            if isinstance(func, ast.Name) and func.id in _ELEMENT_VIEWS:
                return set().union(*(self._alias_roots(a) for a in node.args))
        return set()

    def _bind_alias(self, target: ast.expr, roots: set[str]) -> None:
        for name in _target_names(target):
            others = roots - {name}
            if others:
                self._aliases[name] = others
            else:
                self._aliases.pop(name, None)

    # -- calls --------------------------------------------------------------------------
    def _call(self, call: ast.Call) -> None:
        """Names a call changes: its receiver, its arguments, the globals it touches."""
        func = call.func
        dropped = call is self._statement_call
        if isinstance(func, ast.Attribute):
            root = _root_name(func.value)
            module = self._module_of(root) if root else None
            if module is not None:  # np.random.shuffle(x), helpers.train(model)
                self._library_call(module, func.attr, call)
                return
            inplace = any(
                k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value
                for k in call.keywords
            )
            if dropped and call is not _last_value(self._last_stmt):
                mutates = func.attr not in READ_ONLY_METHODS
            else:  # a displayed or used result: only known mutators change the receiver
                mutates = func.attr in MUTATING_METHODS
            if (mutates or inplace) and root is not None:
                self._mutate(root)
            if func.attr in ARGUMENT_MUTATORS:  # rng.shuffle(x)
                self._mutate_arguments(call, first_only=True)
            return
        if isinstance(func, ast.Name):
            name = func.id
            effects = self.context.effects.get(name)
            module = self._module_of(name)
            if effects is not None and (module is None or name in self._bound_now):
                self._apply_effects(effects, call)
            elif module is not None:  # from random import shuffle
                self._library_call(module, None, call)
            elif name in BUILTIN_NAMES and name not in self._bound_now:
                if name in ARGUMENT_MUTATORS:  # setattr(obj, ...), delattr(obj, ...)
                    self._mutate_arguments(call, first_only=True)
            else:  # a value that is called: we cannot see what it does
                self._mutate_arguments(call)
            return
        self._mutate_arguments(call)  # factories()[0](x), (lambda v: ...)(x)

    def _library_call(self, module: str, attr: str | None, call: ast.Call) -> None:
        name = attr or module.rsplit(".", 1)[-1]
        if module.split(".")[0] not in LIBRARY_MODULES:
            self._mutate_arguments(call)  # helpers.train(model): unknown code
        elif name in ARGUMENT_MUTATORS or (name.endswith("_") and not name.endswith("__")):
            self._mutate_arguments(call, first_only=True)

    def _mutate_arguments(self, call: ast.Call, *, first_only: bool = False) -> None:
        values = [a.value if isinstance(a, ast.Starred) else a for a in call.args]
        if not first_only:
            values += [k.value for k in call.keywords]
        for value in values[:1] if first_only else values:
            root = _argument_root(value)
            if root is not None:
                self._mutate(root)

    def _apply_effects(self, effects: CallEffects, call: ast.Call) -> None:
        changed = effects.mutated
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                hit = bool(changed - set(effects.params[:i])) or effects.vararg in changed
                value: ast.expr = arg.value
            else:
                param = effects.params[i] if i < len(effects.params) else effects.vararg
                hit, value = param in changed, arg
            root = _argument_root(value)
            if hit and root is not None:
                self._mutate(root)
        for keyword in call.keywords:
            if keyword.arg is None:
                hit = bool(changed)
            elif keyword.arg in effects.params:
                hit = keyword.arg in changed
            else:
                hit = effects.kwarg in changed
            root = _argument_root(keyword.value)
            if hit and root is not None:
                self._mutate(root)
        for name in sorted(effects.globals_read):
            self._use(name)
        for name in sorted(effects.globals_mutated):
            self._mutate(name)

    # -- statements -----------------------------------------------------------------
    def _stmt(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            self._expr(node.value)
            roots = self._alias_roots(node.value)
            for target in node.targets:
                self._store(target)
                self._bind_alias(target, roots)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self._expr(node.value)
                self._store(node.target)
                self._bind_alias(node.target, self._alias_roots(node.value))
            self._expr(node.annotation)
        elif isinstance(node, ast.AugAssign):
            self._expr(node.value)
            if isinstance(node.target, ast.Name):
                name = node.target.id
                self._use(name)
                aliases = self._aliases.get(name)
                if aliases:  # `part += [x]` extends the list `part` aliases
                    self._mutate(name)
                self._assign(name)
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
                    module = alias.name if alias.asname else bound
                else:
                    stmt = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                    module = f"{'.' * node.level}{node.module or ''}.{alias.name}"
                if alias.asname:
                    stmt += f" as {alias.asname}"
                self._import(bound, stmt, module)
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
                self._assign(name)
            self._assign(node.name)
            self._aliases.pop(node.name, None)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._expr(node.iter)
            self._store(node.target)
            self._bind_alias(node.target, self._alias_roots(node.iter))
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
                    self._assign(handler.name)
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
            outer = self._statement_call
            self._statement_call = node.value if isinstance(node.value, ast.Call) else None
            try:
                self._expr(node.value)
            finally:
                self._statement_call = outer
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
                self._assign(node.name)
            if isinstance(node, ast.MatchMapping):
                for key in node.keys:
                    self._expr(key)
                if node.rest:
                    self._assign(node.rest)

    def _store(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._assign(target.id)
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
                self._assign(node.id)
        elif isinstance(node, ast.NamedExpr):
            self._expr(node.value)
            self._assign(node.target.id)
        elif isinstance(node, ast.Lambda):
            for part in _evaluated_at_definition(node):
                self._expr(part)
            free, global_writes, _ = scope_free_names(node)
            self._deferred.extend((name, self._cell) for name in sorted(free))
            for name in sorted(global_writes):
                self._assign(name)
        elif isinstance(node, _COMPREHENSIONS):
            self._expr(node.generators[0].iter)
            free, global_writes, walrus = scope_free_names(node)
            for name in sorted(free):
                self._use(name)
            for name in sorted(global_writes | walrus):
                self._assign(name)
        elif isinstance(node, ast.Call):
            for child in ast.iter_child_nodes(node):
                self._expr(child)
            self._call(node)
        else:
            for child in ast.iter_child_nodes(node):
                self._expr(child)


# Builtins whose result holds the very objects passed in (`for a, b in zip(xs, ys)`).
_ELEMENT_VIEWS = frozenset({"zip", "enumerate", "reversed", "iter", "list", "tuple", "sorted"})


def _last_value(stmt: ast.stmt | None) -> ast.expr | None:
    return stmt.value if isinstance(stmt, ast.Expr) else None


def _argument_root(node: ast.expr) -> str | None:
    """The variable an argument hands over (`m`, `m.layer`, `ms[0]`), not a new value."""
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
        return _root_name(node)
    return None


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


def analyze_block(
    cells: list[tuple[int, ast.Module]], context: Context | None = None
) -> BlockNames:
    """Names read and left behind by cells run one after the other in one namespace."""
    analyzer = BlockAnalyzer(context)
    for cell, tree in cells:
        analyzer.add_cell(cell, tree)
    return analyzer.finish()


def _function_effects(
    node: ast.FunctionDef | ast.AsyncFunctionDef, context: Context, *, method: bool = False
) -> CallEffects:
    args = node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    params = set(positional + [a.arg for a in args.kwonlyargs])
    params |= {a.arg for a in (args.vararg, args.kwarg) if a}
    analyzer = BlockAnalyzer(context)
    analyzer._bound_now |= params
    for stmt in node.body:
        analyzer._stmt(stmt)
    body = analyzer.finish()
    declared_global: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Global):
            declared_global.update(child.names)
    local = (body.bound | params) - declared_global
    if method and positional:
        positional = positional[1:]  # `self`: the new object, not an argument
    return CallEffects(
        params=tuple(positional),
        vararg=args.vararg.arg if args.vararg else None,
        kwarg=args.kwarg.arg if args.kwarg else None,
        mutated=frozenset(body.mutated & params),
        globals_mutated=frozenset((body.mutated - local) | (body.defs.keys() & declared_global)),
        globals_read=frozenset(set(body.uses) - params - BUILTIN_NAMES),
    )


def function_effects(
    trees: list[ast.Module], context: Context, rounds: int = 8
) -> dict[str, CallEffects]:
    """What each function (and class constructor) defined at the top level of the
    notebook's cells does when called; functions calling each other settle in a few
    rounds (a call chain longer than `rounds` is cut, which only loses precision)."""
    definitions: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]]] = {}
    for tree in trees:
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                definitions.setdefault(stmt.name, []).append((stmt, False))
            elif isinstance(stmt, ast.ClassDef):
                init = next(
                    (s for s in stmt.body if isinstance(s, ast.FunctionDef)
                     and s.name == "__init__"),
                    None,
                )  # fmt: skip
                # No __init__ of its own (a dataclass, a subclass): building one only
                # stores its arguments, which changes none of them.
                entries = definitions.setdefault(stmt.name, [])
                if init is not None:
                    entries.append((init, True))
    effects: dict[str, CallEffects] = {name: CallEffects() for name in definitions}
    for _ in range(rounds):
        scope = Context(effects=dict(effects), modules=context.modules, fixed=context.fixed)
        changed = False
        for name, nodes in definitions.items():
            found = CallEffects()
            for node, method in nodes:
                found = found.union(_function_effects(node, scope, method=method))
            if found != effects[name]:
                effects[name] = found
                changed = True
        if not changed:
            break
    return effects
