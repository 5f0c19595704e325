"""The two special cells: `pipeline-parameters` (typed inputs) and `pipeline-metrics`.

Parameters must be literal assignments so their type and default are known without
running anything; that is what lets a run override them (`--param n_estimators=200`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook.tags import Cell, cell_label

_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),  # before int: True is an int too
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (list, "list"),
    (dict, "dict"),
)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # int, float, str, bool, list or dict (the Python annotation)
    default: Any
    cell: int


def _type_name(value: Any) -> str | None:
    for cls, name in _TYPES:
        if isinstance(value, cls):
            return name
    return None


def parse_parameters(cells: list[tuple[Cell, ast.Module]]) -> dict[str, Parameter]:
    """`name = literal` lines of the pipeline-parameters cells, in order."""
    params: dict[str, Parameter] = {}
    for cell, tree in cells:
        for stmt in tree.body:
            target: ast.expr | None = None
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                target, value = stmt.target, stmt.value
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring-like comment string
            if not isinstance(target, ast.Name) or value is None:
                raise KubelabError(
                    f"{cell_label(cell.index)}, line {stmt.lineno}: a pipeline-parameters cell may "
                    f"only contain assignments like `name = 0.2`, not "
                    f"{ast.unparse(stmt).splitlines()[0]!r}",
                    cell=cell.index,
                    step=None,
                    line=stmt.lineno,
                )
            try:
                default = ast.literal_eval(value)
            except ValueError:
                default = None
            type_name = _type_name(default)
            if type_name is None:
                raise KubelabError(
                    f"{cell_label(cell.index)}, line {stmt.lineno}: parameter {target.id!r} must be "
                    "a literal int, float, str, bool, list or dict, not "
                    f"{ast.unparse(value)!r}",
                    cell=cell.index,
                    step=None,
                    line=stmt.lineno,
                )
            params[target.id] = Parameter(target.id, type_name, default, cell.index)
    return params


def parse_metrics(cells: list[tuple[Cell, ast.Module]]) -> list[str]:
    """Names reported as metrics: bare names, `print(a, b)` arguments, assignment targets.

    Kale's metrics cells list variables one per line (or print them); assignments such
    as `f1 = 2 * p * r / (p + r)` are accepted too and run in the metrics step.
    """
    names: list[str] = []
    for cell, tree in cells:
        for stmt in tree.body:
            found: list[str] = []
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Name):
                found = [stmt.value.id]
            elif (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name)
                and stmt.value.func.id == "print"
                and all(isinstance(a, ast.Name) for a in stmt.value.args)
            ):
                found = [a.id for a in stmt.value.args if isinstance(a, ast.Name)]
            elif isinstance(stmt, ast.Assign) and all(
                isinstance(t, ast.Name) for t in stmt.targets
            ):
                found = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            else:
                raise KubelabError(
                    f"{cell_label(cell.index)}, line {stmt.lineno}: a pipeline-metrics cell lists "
                    "the values to report (`accuracy`, `print(accuracy)` or "
                    f"`f1 = ...`), not {ast.unparse(stmt).splitlines()[0]!r}",
                    cell=cell.index,
                    step="pipeline-metrics",
                    line=stmt.lineno,
                )
            names.extend(n for n in found if n not in names)
    return names


def parse_value(text: str, parameter: Parameter) -> Any:
    """A command-line `--param name=text` value, converted to the parameter's type."""
    import json

    try:
        if parameter.type == "str":
            return text
        if parameter.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if parameter.type == "int":
            return int(text)
        if parameter.type == "float":
            return float(text)
        value = json.loads(text)
        if _type_name(value) != parameter.type:
            raise ValueError(text)
        return value
    except ValueError:
        raise KubelabError(
            f"parameter {parameter.name!r} is a {parameter.type}; cannot use {text!r}",
            parameter=parameter.name,
        ) from None
