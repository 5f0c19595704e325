"""In a real Jupyter kernel, calling a component after local.init() shows a live widget
and streams the task's prints into the cell output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbclient
import nbformat


def test_component_call_in_a_kernel_shows_widget_and_prints(tmp_path: Path) -> None:
    (tmp_path / "comps.py").write_text(
        textwrap.dedent(
            """
        from kubelab.pipelines import dsl

        @dsl.component
        def add(a: int, b: int) -> int:
            print("adding", a, b)
            return a + b
        """
        )
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from kubelab.pipelines import local\nfrom comps import add\n"
            "local.init(pipeline_root='out')\nprint('result', add(a=2, b=3).output)"
        )
    ]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "[add] adding 2 3" in text
    assert "result 5" in text
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    html = next(m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel")
    assert "succeeded" in html and "<td>add</td>" in html
