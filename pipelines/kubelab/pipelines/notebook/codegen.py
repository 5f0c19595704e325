"""Step graph -> an ordinary KFP v2 DSL module (one component per step + one pipeline).

The generated module is what a person would write by hand: it compiles with the same
compiler and runs on the same engine as hand-written DSL code, and with `from kfp
import dsl` instead of the kubelab import it is valid for the real KFP SDK too.
Cell code is embedded as string literals and run by `runtime.run_cell`, so errors
point at notebook cells rather than at this module.

No user string becomes code: text that comes from the notebook (its path and name,
step names, parameter values and defaults, images, packages, limits, metric names)
reaches the module only through `repr()` or as identifiers that the tag parser and
the static analysis have already checked to be Python names.
"""

from __future__ import annotations

import re

from kubelab.pipelines.notebook.convert import NotebookGraph, Step

DSL_IMPORT = "from kubelab.pipelines import dsl"
PIPELINE_FUNCTION = "notebook_pipeline"
DEFAULT_IMAGE = "python:3.11"


def pipeline_name(name: str) -> str:
    """A KFP-valid pipeline name (lowercase letters, digits, dashes)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (cleaned or "notebook")[:128]


def task_name(step_name: str) -> str:
    """The task key the compiler gives a component named after the step (KFP's rule)."""
    cleaned = re.sub(r"[^-0-9a-z]+", "-", step_name.replace("_", "-").lower())
    return re.sub(r"-+", "-", cleaned).strip("-")


def code_literal(code: str, indent: str = "    ") -> str:
    """A cell's code as a readable string literal: one `'line\\n'` piece per line."""
    lines = code.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(code)
    pieces = "".join(f"{indent}    {line!r}\n" for line in lines)
    return f"(\n{pieces}{indent})"


def output_arguments(step: Step) -> dict[str, str]:
    """Variable -> output argument name; `x_out` when `x` is also an input or parameter."""
    taken = set(step.inputs) | set(step.parameters)
    names: dict[str, str] = {}
    for var in step.outputs:
        arg = var
        while arg in taken:
            arg += "_out"
        taken.add(arg)
        names[var] = arg
    return names


def metrics_argument(step: Step) -> str:
    taken = set(step.inputs) | set(step.parameters)
    arg = "metrics"
    while arg in taken:
        arg = "kubelab_" + arg
    return arg


def _component(
    graph: NotebookGraph, step: Step, default_image: str, workdir: str | None
) -> list[str]:
    outs = output_arguments(step)
    args = [f"{v}: dsl.Input[dsl.Artifact]" for v in step.inputs]
    args += [f"{p}: {graph.parameters[p].type}" for p in step.parameters]
    args += [f"{outs[v]}: dsl.Output[dsl.Artifact]" for v in step.outputs]
    if step.is_metrics:
        args.append(f"{metrics_argument(step)}: dsl.Output[dsl.Metrics]")
    decorator = f"@dsl.component(base_image={(step.image or default_image)!r}"
    if step.packages:
        decorator += f", packages_to_install={step.packages!r}"
    decorator += ")"
    cells = ", ".join(str(c) for c in step.cells)
    name = step.name
    lines = [
        decorator,
        f"def {step.function_name}(",
        *[f"    {a}," for a in args],
        ") -> None:",
        f"    {f'Notebook step {name!r}: cells {cells}.'!r}",
        "    from kubelab.pipelines.notebook import runtime as _kl",
        "",
        "    _ns = _kl.namespace(",
        f"        {name!r},",
        f"        {{{', '.join(f'{p!r}: {p}' for p in step.parameters)}}},",
        f"        workdir={workdir!r},",
        "    )",
    ]
    for cell, code in graph.prelude:
        lines.append(f"    _kl.run_cell(_ns, {cell}, {name!r}, {code_literal(code)})")
    for cell, statement in step.reimports:
        lines.append(f"    _kl.run_cell(_ns, {cell}, {name!r}, {statement!r})")
    for var in step.inputs:
        lines.append(f"    _kl.load(_ns, {var!r}, {var}.path)  # from step {step.producers[var]}")
    for cell, code in step.sources:
        lines.append(f"    _kl.run_cell(_ns, {cell}, {name!r}, {code_literal(code)})")
    for var in step.outputs:
        cell = step.output_cells[var]
        lines.append(f"    _kl.save(_ns, {var!r}, {outs[var]}.path, step={name!r}, cell={cell})")
    if step.is_metrics:
        lines.append(
            f"    _kl.log_metrics(_ns, {metrics_argument(step)}, {graph.metrics!r}, "
            f"step={name!r}, cell={step.cells[0]})"
        )
    return lines


def generate(
    graph: NotebookGraph,
    *,
    name: str,
    description: str = "",
    default_image: str = DEFAULT_IMAGE,
    source: str = "",
    workdir: str | None = None,
    enable_caching: bool | None = None,
) -> str:
    """The DSL module's text."""
    by_name = {s.name: s for s in graph.steps}
    # The docstring holds user strings (the notebook's path and name), so it is written
    # with repr(), the one encoding of text into Python source that is proven safe.
    docstring = (
        f"Pipeline {name!r}, generated by kubelab from notebook {source or '(unsaved)'}.\n\n"
        "Regenerated on every compile: edit the notebook, not this file.\n"
    )
    lines = [repr(docstring), "", DSL_IMPORT, ""]
    for step in graph.steps:
        lines += ["", *_component(graph, step, default_image, workdir), ""]
    params = [f"{p.name}: {p.type} = {p.default!r}" for p in graph.parameters.values()]
    lines += [
        "",
        f"@dsl.pipeline(name={pipeline_name(name)!r}, description={description!r})",
        f"def {PIPELINE_FUNCTION}(",
        *[f"    {p}," for p in params],
        ") -> None:",
    ]
    if not graph.steps:
        lines.append("    pass")
    for step in graph.steps:
        task = f"task_{step.function_name}"
        call_args = []
        for var in step.inputs:
            producer = by_name[step.producers[var]]
            out_arg = output_arguments(producer)[var]
            call_args.append(f"{var}=task_{producer.function_name}.outputs[{out_arg!r}]")
        call_args += [f"{p}={p}" for p in step.parameters]
        lines.append(f"    {task} = {step.function_name}({', '.join(call_args)})")
        lines.append(f"    {task}.set_display_name({step.name!r})")
        data_parents = set(step.producers.values())
        for parent in step.depends_on:
            if parent not in data_parents:
                lines.append(f"    {task}.after(task_{by_name[parent].function_name})")
        cache = step.cache if step.cache is not None else enable_caching
        if cache is not None:
            lines.append(f"    {task}.set_caching_options({cache})")
        limits = step.limits
        if "cpu" in limits:
            lines.append(f"    {task}.set_cpu_limit({limits['cpu']!r})")
        if "memory" in limits:
            lines.append(f"    {task}.set_memory_limit({limits['memory']!r})")
        for key, value in limits.items():
            if key not in ("cpu", "memory"):
                lines.append(f"    {task}.set_accelerator_type({key!r})")
                lines.append(f"    {task}.set_accelerator_limit({int(value)})")
    return "\n".join(lines) + "\n"
