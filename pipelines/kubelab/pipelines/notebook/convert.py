"""Tagged cells -> a step graph with data edges (pure; no files, no imports of user code).

A name read by step B and last defined or changed (in notebook order) by an earlier
step A makes an A -> B edge; `prev:` tags add edges without data. Steps with no path
between them run in parallel, which is only sound if no later step needs a variable
both of them define; that case is an error.

Which step hands the value to B follows Kale: the nearest upstream step that read or
wrote it. So a step between A and B that reads the variable passes on the value as
it left that step, and a change the analysis could not see (a call into code it
cannot read) still reaches B exactly as in the kernel. A value handed on unchanged
costs a digest, not a second copy (see `marshal`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook import tags as tagmod
from kubelab.pipelines.notebook.analysis import (
    BUILTIN_NAMES,
    BlockNames,
    Context,
    analyze_block,
    function_effects,
    parse_cell,
)
from kubelab.pipelines.notebook.magics import translate
from kubelab.pipelines.notebook.parameters import Parameter, parse_metrics, parse_parameters
from kubelab.pipelines.notebook.tags import METRICS_STEP, Cell, cell_label, group_cells

# What the step runtime needs besides kubelab, which pods install with --no-deps
# (already installed ones are skipped, locally and in pods).
RUNTIME_PACKAGES = ("cloudpickle",)


@dataclass
class Step:
    """One pipeline step made of notebook cells (the public shape is in `to_json`)."""

    name: str
    cells: list[int]
    depends_on: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    cache: bool | None = None
    packages: list[str] = field(default_factory=list)
    # For code generation: translated code per cell, where each output is last set,
    # producers of inputs, import statements re-run from earlier steps, magic notes.
    sources: list[tuple[int, str]] = field(default_factory=list)
    output_cells: dict[str, int] = field(default_factory=dict)
    producers: dict[str, str] = field(default_factory=dict)
    reimports: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    is_metrics: bool = False

    @property
    def function_name(self) -> str:
        return tagmod.python_name(self.name)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "cells": list(self.cells),
            "depends_on": list(self.depends_on),
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "parameters": list(self.parameters),
            "limits": dict(self.limits),
            "image": self.image,
        }


@dataclass
class Edge:
    source: str
    target: str
    variables: list[str]

    def to_json(self) -> dict:
        return {"from": self.source, "to": self.target, "variables": list(self.variables)}


@dataclass
class NotebookGraph:
    """Everything code generation needs, with no reference to the .ipynb file."""

    steps: list[Step]
    parameters: dict[str, Parameter]
    metrics: list[str]
    edges: list[Edge]
    prelude: list[tuple[int, str]]  # imports then functions cells: (cell, code)
    warnings: list[str] = field(default_factory=list)
    # Every grouped code cell: (index, role, step), for labels on the notebook's cells.
    cell_roles: list[tuple[int, str, str | None]] = field(default_factory=list)


def _where(cell: int, step: str | None) -> str:
    return cell_label(cell) + (f" (step {step})" if step else "")


def _prepare(cells: list[Cell], step: str | None, packages: list[str], notes: list[str]):
    """Translate magics and parse each cell: [(cell, code, tree)]."""
    out = []
    for cell in cells:
        translation = translate(cell.source, cell=cell.index, step=step)
        packages.extend(p for p in translation.packages if p not in packages)
        notes.extend(f"{cell_label(cell.index)}: {note}" for note in translation.notes)
        tree = parse_cell(translation.source, cell=cell.index, step=step)
        out.append((cell.index, translation.source, tree))
    return out


def _prelude_context(prelude: list[tuple[int, str, ast.Module]]) -> Context:
    """Modules the imports/functions cells bind, and their functions and classes."""
    modules: dict[str, str] = {}
    fixed: set[str] = set()
    for _, _, tree in prelude:
        for stmt in tree.body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    bound = (alias.asname or alias.name).split(".")[0]
                    modules[bound] = alias.name if alias.asname else bound
            elif isinstance(stmt, ast.ImportFrom):
                for alias in stmt.names:
                    base = "." * stmt.level + (stmt.module or "")
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                fixed.add(stmt.name)
    return Context(modules=modules, fixed=frozenset(fixed))


def build_graph(cells: list[Cell]) -> NotebookGraph:
    """Group, analyse and connect the cells; raise KubelabError naming cell and step."""
    tagged = group_cells(cells)
    warnings: list[str] = []

    prelude_packages: list[str] = []
    prelude_notes: list[str] = []
    prelude = _prepare(tagged.imports + tagged.functions, None, prelude_packages, prelude_notes)
    warnings += prelude_notes

    param_cells = [(c, parse_cell(c.source, cell=c.index, step=None)) for c in tagged.parameters]
    parameters = parse_parameters(param_cells)

    steps: list[Step] = []
    prepared_steps = []
    for spec in tagged.steps:
        step = Step(spec.name, [c.index for c in spec.cells], limits=dict(spec.limits))
        step.image = spec.image
        step.cache = spec.cache
        step.packages = list(RUNTIME_PACKAGES) + prelude_packages
        prepared = _prepare(spec.cells, spec.name, step.packages, step.notes)
        step.sources = [(c, code) for c, code, _ in prepared]
        steps.append(step)
        prepared_steps.append([(c, t) for c, _, t in prepared])
    metric_trees = [
        (c, parse_cell(c.source, cell=c.index, step=METRICS_STEP)) for c in tagged.metrics
    ]

    # What calls do: read from every function the notebook defines, wherever it is.
    context = _prelude_context(prelude)
    trees = [t for _, _, t in prelude] + [t for block in prepared_steps for _, t in block]
    context.effects = function_effects(trees + [t for _, t in metric_trees], context)
    global_block = analyze_block([(c, t) for c, _, t in prelude], context)
    # Functions cells run in every step: the parameters they read go to every step.
    prelude_parameters = [name for name in global_block.uses if name in parameters]
    star = global_block.star_import
    blocks: list[BlockNames] = []
    for step, block in zip(steps, prepared_steps, strict=True):
        step.parameters = list(prelude_parameters)
        blocks.append(analyze_block(block, context))

    metric_names: list[str] = []
    if tagged.metrics:
        metric_names = parse_metrics(metric_trees)
        step = Step(METRICS_STEP, [c.index for c, _ in metric_trees], is_metrics=True)
        step.packages = list(RUNTIME_PACKAGES) + prelude_packages
        step.parameters = list(prelude_parameters)
        step.sources = [(c.index, c.source) for c, _ in metric_trees]
        block = analyze_block([(c.index, t) for c, t in metric_trees], context)
        for name in metric_names:  # a listed name is read even if only printed
            if name not in block.bound:
                block.uses.setdefault(name, metric_trees[0][0].index)
        steps.append(step)
        blocks.append(block)

    functions = {s.function_name for s in steps}
    for param in parameters.values():
        if param.name in functions or param.name.startswith("task_"):
            raise KubelabError(
                f"{cell_label(param.cell)}: pipeline parameter {param.name!r} clashes with a step of "
                "the same name (or the generated task_* names); rename the parameter",
                cell=param.cell,
                step=None,
            )

    by_name = {s.name: s for s in steps}
    position = {s.name: i for i, s in enumerate(steps)}
    prev_parents: dict[str, set[str]] = {s.name: set() for s in steps}

    # Explicit prev: edges.
    for spec in tagged.steps:
        for prev in spec.prev:
            if prev not in by_name:
                cell = spec.prev_cells[prev]
                raise KubelabError(
                    f"{_where(cell, spec.name)}: tag prev:{prev} names a step that does not "
                    f"exist; steps are: {', '.join(s.name for s in steps)}",
                    cell=cell,
                    step=spec.name,
                )
            prev_parents[spec.name].add(prev)
    parents = {name: set(ps) for name, ps in prev_parents.items()}

    # Data edges: the last earlier step that defined or changed the name.
    uses_by_step: list[list[tuple[str, int, str]]] = []
    for i, (step, block) in enumerate(zip(steps, blocks, strict=True)):
        resolved: list[tuple[str, int, str]] = []
        for name, cell in block.uses.items():
            if name in BUILTIN_NAMES:
                continue
            if name in parameters:
                if name not in step.parameters:
                    step.parameters.append(name)
                continue
            writer_index = next(
                (
                    j
                    for j in range(i - 1, -1, -1)
                    if name in blocks[j].defs
                    or name in blocks[j].deleted
                    or name in blocks[j].imported
                ),
                None,
            )
            if writer_index is None and name in global_block.bound:
                continue  # from the imports/functions cells, which every step runs
            if writer_index is None:
                if star or blocks[i].star_import:
                    continue  # `from x import *` may provide it; cannot tell statically
                later = next((s.name for s, b in zip(steps, blocks, strict=True)
                              if name in b.bound and s is not step), None)  # fmt: skip
                hint = (
                    f"; it is defined later, in step {later!r} — move that code up"
                    if later
                    else "; define it in an earlier step, an imports/functions cell or the "
                    "pipeline-parameters cell"
                )
                raise KubelabError(
                    f"{_where(cell, step.name)}: name {name!r} is used but not defined{hint}",
                    cell=cell,
                    step=step.name,
                    variable=name,
                )
            writer, wblock = steps[writer_index], blocks[writer_index]
            if name in wblock.deleted:
                raise KubelabError(
                    f"{_where(cell, step.name)}: name {name!r} is used, but step "
                    f"{writer.name!r} deleted it in {cell_label(wblock.deleted[name])}",
                    cell=cell,
                    step=step.name,
                    variable=name,
                )
            if name in wblock.imported:
                step.reimports.append(wblock.imported[name])
                continue
            resolved.append((name, cell, writer.name))
            parents[step.name].add(writer.name)
        uses_by_step.append(resolved)
        for name in sorted(block.assigned & set(parameters)):
            warnings.append(
                f"step {step.name}: {cell_label(block.defs[name])} changes pipeline parameter "
                f"{name!r}; the change stays in this step (later steps get the run's value)"
            )

    order = _topological_order(steps, parents, position, tagged)
    ancestors = _ancestors(order, parents)

    # Ambiguity: another ancestor also defines the name, in parallel with the writer.
    for i, step in enumerate(steps):
        for name, cell, writer in uses_by_step[i]:
            for j in range(position[writer]):
                other = steps[j]
                if (
                    name in blocks[j].defs
                    and other.name in ancestors[step.name]
                    and other.name not in ancestors[writer]
                ):
                    raise KubelabError(
                        f"{_where(cell, step.name)}: {name!r} is defined by both step "
                        f"{other.name!r} ({cell_label(blocks[j].defs[name])}) and step {writer!r} "
                        f"({cell_label(blocks[position[writer]].defs[name])}), which run in "
                        f"parallel, so it is unclear which value step {step.name!r} gets; "
                        f"add prev:{other.name} to step {writer!r} or rename one of them",
                        cell=cell,
                        step=step.name,
                        variable=name,
                        steps=[other.name, writer],
                    )

    # Producers (Kale's rule): the nearest upstream step that read or wrote the name.
    rank = {name: k for k, name in enumerate(order)}
    data: dict[tuple[str, str], list[str]] = {}
    final_parents = {name: set(ps) for name, ps in prev_parents.items()}
    for i, step in enumerate(steps):
        for name, _cell, writer in uses_by_step[i]:
            readers = [
                other.name
                for j, other in enumerate(steps)
                if position[writer] < j < i
                and other.name in ancestors[step.name]
                and name in blocks[j].uses
                and name not in blocks[j].imported
            ]
            producer_name = max([writer, *readers], key=rank.__getitem__)
            producer, pblock = by_name[producer_name], blocks[position[producer_name]]
            final_parents[step.name].add(producer_name)
            data.setdefault((producer_name, step.name), []).append(name)
            step.inputs.append(name)
            step.producers[name] = producer_name
            if name not in producer.outputs:
                producer.outputs.append(name)
                producer.output_cells[name] = pblock.defs.get(name, pblock.uses.get(name, -1))

    for step in steps:
        step.depends_on = sorted(final_parents[step.name], key=position.__getitem__)
    edges = [
        Edge(p, s.name, sorted(data.get((p, s.name), []))) for s in steps for p in s.depends_on
    ]
    return NotebookGraph(
        steps=[by_name[n] for n in order],
        parameters=parameters,
        metrics=metric_names,
        edges=edges,
        prelude=[(c, code) for c, code, _ in prelude],
        warnings=warnings + [f"step {s.name}: {n}" for s in steps for n in s.notes],
        cell_roles=list(tagged.roles),
    )


def _topological_order(
    steps: list[Step],
    parents: dict[str, set[str]],
    position: dict[str, int],
    tagged: tagmod.TaggedNotebook,
) -> list[str]:
    """Steps in an order that respects edges, notebook order breaking ties; cycles raise."""
    remaining = {s.name: set(parents[s.name]) for s in steps}
    order: list[str] = []
    while remaining:
        ready = sorted((n for n, ps in remaining.items() if not ps), key=position.__getitem__)
        if not ready:
            cycle = sorted(remaining, key=position.__getitem__)
            first = next(s for s in tagged.steps if s.name in remaining)
            cell = next(iter(first.prev_cells.values()), first.cells[0].index)
            raise KubelabError(
                f"{_where(cell, first.name)}: the steps {', '.join(cycle)} depend on each "
                "other in a cycle (check their prev: tags)",
                cell=cell,
                step=first.name,
                steps=cycle,
            )
        name = ready[0]
        order.append(name)
        del remaining[name]
        for ps in remaining.values():
            ps.discard(name)
    return order


def _ancestors(order: list[str], parents: dict[str, set[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for name in order:
        acc: set[str] = set()
        for parent in parents[name]:
            acc.add(parent)
            acc |= result[parent]
        result[name] = acc
    return result
