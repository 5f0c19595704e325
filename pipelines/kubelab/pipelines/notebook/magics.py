"""IPython magics and `!shell` lines, turned into plain Python (see docs/notebook.md).

A pipeline step runs as plain Python, not in an IPython kernel, so every magic is
handled explicitly rather than failing at run time. The translation keeps one output
line per input line so that line numbers in tracebacks still match the cell.
Cells that are already valid Python are returned untouched (a `%` or `!` at the
start of a line inside a string literal is then never rewritten).
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field

from kubelab.pipelines.errors import KubelabError
from kubelab.pipelines.notebook.tags import cell_label

# Cell magics whose body is ordinary Python that runs once: the magic line is dropped.
STRIPPED_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
# Cell magics whose body is a shell script.
SHELL_CELL_MAGICS = frozenset({"bash", "sh"})

_ASSIGN_SHELL = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*=\s*!(.*)$")
_ASSIGN_MAGIC = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*=\s*%(.*)$")
_PIP_OPTIONS_WITH_VALUE = frozenset(
    {
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
    }
)


@dataclass
class Translation:
    """A cell's code as plain Python, plus what the magics asked for."""

    source: str
    packages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line per handled magic


def _shell_call(indent: str, command: str) -> str:
    # One line, no imports added to the user's namespace.
    return f'{indent}__import__("subprocess").run({command!r}, shell=True, check=True)'


def _pip_packages(args: list[str]) -> tuple[list[str], list[str]]:
    """Requirement specifiers of a `pip install ...` line, and ignored options."""
    packages: list[str] = []
    ignored: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            ignored.append(arg)
            skip_next = False
        elif arg in _PIP_OPTIONS_WITH_VALUE:
            ignored.append(arg)
            skip_next = True
        elif arg.startswith("-"):
            ignored.append(arg)
        else:
            packages.append(arg)
    return packages, ignored


def _pip_install(command: str) -> list[str] | None:
    """Packages if `command` is `pip install ...` (any spelling), else None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and words[0] in {"python", "python3", "-m", "sys.executable"}:
        words = words[1:]
    if len(words) >= 2 and words[0] in {"pip", "pip3"} and words[1] == "install":
        return _pip_packages(words[2:])[0]
    return None


def translate(source: str, *, cell: int, step: str | None) -> Translation:
    """Rewrite magics and shell lines of one cell; raise on ones we cannot honour."""
    try:
        ast.parse(source)
        return Translation(source)
    except SyntaxError:
        pass  # maybe magics; if not, the caller reports the syntax error
    lines = source.split("\n")
    out = Translation("")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic_line = lines[first].strip()
        magic = magic_line[2:].split(None, 1)[0] if len(magic_line) > 2 else ""
        if magic in STRIPPED_CELL_MAGICS:
            lines[first] = f"pass  # kubelab: stripped IPython cell magic {magic_line}"
            out.notes.append(f"stripped cell magic {magic_line}")
        elif magic in SHELL_CELL_MAGICS:
            script = "\n".join(lines[first + 1 :])
            # Same number of lines: the call, then blank lines.
            call = _shell_call("", script)
            out.notes.append(f"%%{magic} cell runs as a shell script")
            out.source = call + "\n" * (len(lines) - first - 1)
            out.source = "\n" * first + out.source
            return out
        else:
            raise KubelabError(
                cell_label(cell) + (f" (step {step})" if step else "") + f": cell magic "
                f"{magic_line!r} cannot run in a pipeline step; supported cell magics are "
                + ", ".join(f"%%{m}" for m in sorted(STRIPPED_CELL_MAGICS | SHELL_CELL_MAGICS))
                + ". Rewrite the cell as Python, or tag it 'skip'",
                cell=cell,
                step=step,
            )
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("%%"):
            if i != first:
                raise KubelabError(
                    f"{cell_label(cell)}: cell magic {stripped!r} must be on the first line",
                    cell=cell,
                    step=step,
                )
            continue
        if (
            stripped.startswith("!")
            or stripped.startswith("%pip ")
            or stripped.startswith("%conda ")
        ):
            command = stripped[1:].strip()
            packages = _pip_install(command) if not stripped.startswith("%conda") else None
            if packages is not None:
                out.packages.extend(p for p in packages if p not in out.packages)
                lines[i] = f"{indent}pass  # kubelab: {stripped} -> packages_to_install"
                out.notes.append(f"{stripped} -> packages_to_install {packages}")
            elif stripped.startswith("%conda"):
                lines[i] = f"{indent}pass  # kubelab: stripped {stripped}"
                out.notes.append(f"stripped {stripped} (use the step image for conda packages)")
            else:
                lines[i] = _shell_call(indent, command)
                out.notes.append(f"{stripped} -> subprocess.run(..., shell=True, check=True)")
        elif stripped.startswith("%"):
            lines[i] = f"{indent}pass  # kubelab: stripped IPython magic {stripped}"
            out.notes.append(f"stripped line magic {stripped}")
        elif m := _ASSIGN_SHELL.match(line):
            lines[i] = (
                f'{m.group(1)}{m.group(2)} = __import__("subprocess").run({m.group(3).strip()!r}, '
                "shell=True, check=True, capture_output=True, text=True).stdout.splitlines()"
            )
            out.notes.append(f"{stripped} -> subprocess output lines")
        elif _ASSIGN_MAGIC.match(line):
            raise KubelabError(
                cell_label(cell) + (f" (step {step})" if step else "") + f", line {i + 1}: the "
                f"result of a magic cannot be assigned in a pipeline step: {stripped!r}",
                cell=cell,
                step=step,
                line=i + 1,
            )
    out.source = "\n".join(lines)
    return out
