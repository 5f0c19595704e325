"""Kale-compatible cell tags: which cells form which step, and with what settings.

Pure: takes the notebook's cells (source + tags), returns the grouping. Tag rules
follow Kale so that a Kale user's notebook works unchanged:

* `imports`, `functions`, `pipeline-parameters`, `pipeline-metrics`, `skip` set a
  cell's role; `step:NAME` (or Kale's older `block:NAME`) starts or continues step NAME;
* an untagged code cell continues the step (or `imports`, `functions`, ... block)
  that was active before it; a `skip` cell only skips itself and never becomes that
  block, so untagged cells after it continue the step before it (as in Kale, whose
  notebook processor does not store `skip` as the previous cell);
* `prev:NAME`, `limit:KEY:VALUE`, `image:REF`, `cache:enabled|disabled` configure the
  step of the cell;
* other tags (Kale's `annotation:`/`label:`, papermill's `parameters`, ...) are kept
  out of the way rather than rejected, since notebooks carry tags for other tools.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from kubelab.pipelines.errors import KubelabError

IMPORTS = "imports"
FUNCTIONS = "functions"
PARAMETERS = "pipeline-parameters"
METRICS = "pipeline-metrics"
SKIP = "skip"
STEP = "step"

ROLE_TAGS = (IMPORTS, FUNCTIONS, PARAMETERS, METRICS, SKIP)

# The metrics cells become one final step with this name, as in Kale.
METRICS_STEP = "pipeline-metrics"

_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_CPU = re.compile(r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?([EPTGMk]i?|e[0-9]+)?$")
_COUNT = re.compile(r"^[0-9]+$")

# Names the generated module itself uses at top level.
RESERVED_STEP_NAMES = frozenset({"dsl", "notebook_pipeline"})


def cell_label(index: int) -> str:
    """A cell index (0-based) as JupyterLab users count cells: `cell 13` for index 12."""
    return f"cell {index + 1}"


@dataclass
class Cell:
    """One code cell of the notebook, as read from the .ipynb."""

    index: int  # position among ALL cells (markdown included), as Jupyter shows it
    source: str
    tags: list[str]


@dataclass
class StepSpec:
    """A step as written in the tags, before any analysis."""

    name: str
    cells: list[Cell] = field(default_factory=list)
    prev: list[str] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    cache: bool | None = None  # `cache:enabled` / `cache:disabled` (Kale); None: default
    # Cell that first declared each `prev:` (to point errors at it).
    prev_cells: dict[str, int] = field(default_factory=dict)

    @property
    def function_name(self) -> str:
        return python_name(self.name)


@dataclass
class TaggedNotebook:
    """Cells grouped by role: the input of static analysis and code generation."""

    imports: list[Cell] = field(default_factory=list)
    functions: list[Cell] = field(default_factory=list)
    parameters: list[Cell] = field(default_factory=list)
    metrics: list[Cell] = field(default_factory=list)
    steps: list[StepSpec] = field(default_factory=list)
    # Each grouped code cell in notebook order: (index, role, step name or None).
    roles: list[tuple[int, str, str | None]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def python_name(step_name: str) -> str:
    """The component function name for a step (`load-data` -> `load_data`)."""
    return step_name.replace("-", "_")


def _check_step_name(name: str, cell: int) -> None:
    if not _STEP_NAME.match(name):
        raise KubelabError(
            f"{cell_label(cell)}: step name {name!r} must start with a letter or '_' and contain "
            "only letters, digits, '_' and '-'",
            cell=cell,
            step=name,
        )
    ident = python_name(name)
    if keyword.iskeyword(ident) or ident in RESERVED_STEP_NAMES:
        raise KubelabError(
            f"{cell_label(cell)}: step name {name!r} is reserved; pick another name",
            cell=cell,
            step=name,
        )


def _parse_limit(tag: str, cell: int, step: str | None) -> tuple[str, str]:
    body = tag[len("limit:") :]
    key, sep, value = body.rpartition(":")
    if not sep or not key or not value:
        raise KubelabError(
            f"{cell_label(cell)}: tag {tag!r} must look like limit:KEY:VALUE "
            "(limit:cpu:2, limit:memory:4Gi, limit:nvidia.com/gpu:1)",
            cell=cell,
            step=step,
        )
    if key == "cpu":
        ok = bool(_CPU.match(value))
    elif key == "memory":
        ok = bool(_MEMORY.match(value))
    elif "/" in key:  # an accelerator such as nvidia.com/gpu or amd.com/gpu
        ok = bool(_COUNT.match(value))
    else:
        raise KubelabError(
            f"{cell_label(cell)}: unknown resource {key!r} in tag {tag!r}; use cpu, memory or a "
            "vendor/device key such as nvidia.com/gpu",
            cell=cell,
            step=step,
        )
    if not ok:
        raise KubelabError(
            f"{cell_label(cell)}: {value!r} is not a valid quantity for {key} in tag {tag!r}",
            cell=cell,
            step=step,
        )
    return key, value


def group_cells(cells: list[Cell]) -> TaggedNotebook:
    """Assign each code cell a role and each step its cells, prev edges and settings."""
    nb = TaggedNotebook()
    steps: dict[str, StepSpec] = {}
    current: str | None = None  # the active role (never "skip"), or "step"
    current_step: StepSpec | None = None
    for cell in cells:
        tags = [t.strip() for t in cell.tags if t and t.strip()]
        role: str | None = None
        step_name: str | None = None
        for tag in tags:
            if tag in ROLE_TAGS:
                role = role or tag
            elif tag.startswith(("step:", "block:")):
                name = tag.split(":", 1)[1].strip()
                _check_step_name(name, cell.index)
                if step_name and step_name != name:
                    raise KubelabError(
                        f"{cell_label(cell.index)} is tagged with two steps, {step_name!r} and "
                        f"{name!r}; a cell belongs to one step",
                        cell=cell.index,
                        step=step_name,
                    )
                step_name = name
        if role is None and step_name is not None:
            role = STEP
        if role is None:
            if current is None:
                if not cell.source.strip():
                    continue  # an empty leading cell is harmless
                raise KubelabError(
                    f"{cell_label(cell.index)} has no tag and no step comes before it (a skip "
                    "cell only skips itself); tag it with step:NAME (or imports, functions, skip)",
                    cell=cell.index,
                    step=None,
                )
            role = current
        if role == STEP:
            if step_name is not None:
                if step_name not in steps:
                    steps[step_name] = StepSpec(step_name)
                    nb.steps.append(steps[step_name])
                current_step = steps[step_name]
            assert current_step is not None
            current_step.cells.append(cell)
            for tag in tags:
                if tag.startswith("prev:"):
                    prev = tag.split(":", 1)[1].strip()
                    if prev and prev not in current_step.prev:
                        current_step.prev.append(prev)
                        current_step.prev_cells[prev] = cell.index
                elif tag.startswith("limit:"):
                    key, value = _parse_limit(tag, cell.index, current_step.name)
                    current_step.limits[key] = value
                elif tag.startswith("cache:"):
                    value = tag.split(":", 1)[1].strip().lower()
                    if value not in ("enabled", "disabled"):
                        raise KubelabError(
                            f"{cell_label(cell.index)}: tag {tag!r} must be cache:enabled or "
                            "cache:disabled",
                            cell=cell.index,
                            step=current_step.name,
                        )
                    current_step.cache = value == "enabled"
                elif tag.startswith("image:"):
                    image = tag.split(":", 1)[1].strip()
                    if not image:
                        raise KubelabError(
                            f"{cell_label(cell.index)}: tag 'image:' needs an image reference",
                            cell=cell.index,
                            step=current_step.name,
                        )
                    current_step.image = image
        elif role == IMPORTS:
            nb.imports.append(cell)
        elif role == FUNCTIONS:
            nb.functions.append(cell)
        elif role == PARAMETERS:
            nb.parameters.append(cell)
        elif role == METRICS:
            nb.metrics.append(cell)
        elif role == SKIP:
            nb.skipped.append(cell.index)
        step_of_cell = current_step.name if role == STEP and current_step else None
        nb.roles.append((cell.index, role, METRICS_STEP if role == METRICS else step_of_cell))
        if role == SKIP:
            continue  # a skip cell skips itself only: the active block stays active
        current = role
    names = {python_name(s.name): s.name for s in nb.steps}
    if nb.metrics and python_name(METRICS_STEP) in names:
        raise KubelabError(
            f"step name {METRICS_STEP!r} is reserved for the pipeline-metrics cells",
            step=METRICS_STEP,
            cell=steps[names[python_name(METRICS_STEP)]].cells[0].index,
        )
    seen: dict[str, str] = {}
    for step in nb.steps:
        other = seen.setdefault(step.function_name.lower(), step.name)
        if other != step.name:
            raise KubelabError(
                f"steps {other!r} and {step.name!r} differ only by case or '-' versus '_', "
                "which give the same task name; "
                "rename one of them",
                cell=step.cells[0].index,
                step=step.name,
            )
    return nb
