"""Components defined by YAML: KFP's compiled IR (v2) or the older `component.yaml` (v1).

This is how shared components travel: a file or URL that `kfp.components`' loaders
(here `kubelab.pipelines.components`) turn into a component. A v2 file is a compiled
pipeline; when it holds one container component, that component is the task's, and
otherwise the whole compiled pipeline becomes a sub-DAG of the pipeline that uses it.
A v1 file names its inputs and outputs and a container whose command embeds
`{inputValue: x}`-style placeholders, converted here to the v2 ones.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from kubelab.pipelines.dsl import artifact_types, types
from kubelab.pipelines.dsl import placeholders as ph
from kubelab.pipelines.dsl.base_component import BaseComponent
from kubelab.pipelines.dsl.pipeline_context import sanitize_name
from kubelab.pipelines.errors import KubelabError

_GOOGLE_TYPE = re.compile(r"^google\.[A-Za-z]+$")
_DESCRIPTION = "# Description: "


class YamlComponent(BaseComponent):
    """A component loaded from YAML; call it inside a pipeline like any other."""

    def __init__(
        self,
        name: str,
        inputs: dict[str, types.IOSpec],
        outputs: dict[str, types.IOSpec],
        description: str | None,
        component_yaml: str,
        *,
        container: dict[str, Any] | None = None,
        pipeline_spec: dict[str, Any] | None = None,
        platform_spec: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, inputs, outputs, description)
        self.component_yaml = component_yaml
        self.container = container
        # A compiled pipeline used whole, as a sub-DAG, with its PlatformSpec if any.
        self.pipeline_spec = pipeline_spec
        self.platform_spec = platform_spec or {}
        self.runs_in_container = container is not None

    def executor_spec(self) -> dict[str, Any] | None:
        return {"container": copy.deepcopy(self.container)} if self.container else None


def load_yaml_component(text: str, source: str = "component YAML") -> YamlComponent:
    """A component from the text of a v1 `component.yaml` or a compiled v2 pipeline."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise KubelabError(f"{source} is not valid YAML: {error}", source=source) from error
    if not documents or len(documents) > 2 or not all(isinstance(d, dict) for d in documents):
        raise KubelabError(
            f"{source} must hold one component (or a pipeline and its PlatformSpec), "
            f"got {len(documents)} YAML document(s).",
            source=source,
        )
    if "implementation" in documents[0]:
        return _from_v1(documents[0], text, source)
    if "pipelineInfo" in documents[0] and "root" in documents[0]:
        platform = documents[1] if len(documents) == 2 else {}
        return _from_ir(documents[0], platform, text, source)
    raise KubelabError(
        f"{source} is neither a v1 component.yaml (with 'implementation') nor a compiled "
        "pipeline (with 'pipelineInfo' and 'root').",
        source=source,
    )


# ---------------------------------------------------------------- v1 component.yaml
def input_name(name: str) -> str:
    """KFP's sanitised input/output name: 'Input 1' -> 'input_1'."""
    return re.sub(r"[^_0-9a-z]+", "_", name.lower()).strip("_")


@functools.cache
def _custom_artifact_class(schema_title: str) -> type[artifact_types.Artifact]:
    """An artifact class for a schema title kubelab does not define (google.VertexModel)."""
    name = re.sub(r"\W", "", schema_title.split(".")[-1]) or "Artifact"
    return type(name, (artifact_types.Artifact,), {"schema_title": schema_title})


def _v1_type(type_: Any) -> tuple[str | None, type[artifact_types.Artifact] | None]:
    """(parameter type, artifact class) of a v1 `type:`; unknown types are artifacts."""
    if isinstance(type_, str):
        if type_.startswith("typing."):
            type_ = type_[len("typing.") :]
        if type_.lower().startswith(("list", "dict")):
            type_ = type_.split("[")[0]
        if type_ == "PipelineTaskFinalStatus":
            return types.TASK_FINAL_STATUS, None
        ptype = types.parameter_type_of(type_)
        if ptype is not None:
            return ptype, None
        if _GOOGLE_TYPE.match(type_):
            return None, _custom_artifact_class(type_)
        known = artifact_types.class_for_name(type_)
        if known is not None and "." not in type_:
            return None, known
    return None, artifact_types.Artifact


def _v1_default(ptype: str | None, default: Any) -> Any:
    """v1 defaults are strings: cast them to the declared type, as KFP does."""
    if default is None or not isinstance(default, str):
        return default
    if ptype == types.NUMBER_INTEGER:
        return int(default)
    if ptype == types.NUMBER_DOUBLE:
        return float(default)
    if ptype == types.BOOLEAN:
        return default.strip().lower() in ("y", "yes", "t", "true", "on", "1")
    if ptype in (types.LIST, types.STRUCT):
        try:
            return json.loads(default)
        except ValueError:
            return default
    return default


class _V1Placeholders:
    """Converts a v1 command-line element to a v2 string (or a structured placeholder)."""

    def __init__(self, outputs: dict[str, types.IOSpec], source: str) -> None:
        self.outputs = outputs
        self.source = source

    def convert(self, arg: Any) -> Any:
        if isinstance(arg, (str, int, float)) and not isinstance(arg, bool):
            return str(arg)
        if not isinstance(arg, dict) or len(arg) != 1:
            raise KubelabError(
                f"{self.source}: unexpected command-line element {arg!r}; expected a string "
                "or one placeholder such as {inputValue: name}.",
                source=self.source,
            )
        ((key, value),) = arg.items()
        simple = {
            "inputValue": ph.InputValuePlaceholder,
            "inputPath": ph.InputPathPlaceholder,
            "inputUri": ph.InputUriPlaceholder,
            "outputUri": ph.OutputUriPlaceholder,
        }
        if key in simple:
            return simple[key](input_name(value))
        if key == "outputPath":
            spec = self.outputs.get(input_name(value))
            if spec is None:
                raise KubelabError(
                    f"{self.source}: {{outputPath: {value}}} names no declared output.",
                    source=self.source,
                )
            if spec.is_artifact:
                return ph.OutputPathPlaceholder(spec.name)
            return ph.OutputParameterPlaceholder(spec.name)
        if key == "executorInput":
            return ph.ExecutorInputPlaceholder()
        if key == "concat":
            return ph.ConcatPlaceholder([self.convert(v) for v in value])
        if key == "if":
            branch = value or {}
            then = branch.get("then")
            otherwise = branch.get("else")
            return ph.IfPresentPlaceholder(
                input_name(branch.get("cond", {}).get("isPresent", "")),
                self._branch(then),
                self._branch(otherwise) if otherwise is not None else None,
            )
        if key == "ifPresent":
            return ph.IfPresentPlaceholder(
                input_name(value["inputName"]),
                self._branch(value.get("then")),
                self._branch(value["else"]) if value.get("else") is not None else None,
            )
        raise KubelabError(
            f"{self.source}: unknown placeholder {key!r} in {arg!r}.", source=self.source
        )

    def _branch(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.convert(v) for v in value]
        return self.convert(value)


def _from_v1(spec: dict[str, Any], text: str, source: str) -> YamlComponent:
    implementation = spec.get("implementation") or {}
    container = implementation.get("container")
    if not isinstance(container, dict) or not container.get("image"):
        raise KubelabError(
            f"{source}: only container components are supported (implementation.container "
            "with an image).",
            source=source,
        )
    inputs: dict[str, types.IOSpec] = {}
    for entry in spec.get("inputs") or []:
        name = input_name(entry["name"])
        ptype, cls = _v1_type(entry.get("type"))
        optional = bool(entry.get("optional", False)) or "default" in entry
        default = _v1_default(ptype, entry.get("default"))
        io = types.IOSpec(name, parameter_type=ptype, artifact_class=cls, optional=optional)
        if default is not None:
            io.default = default
        if ptype == types.TASK_FINAL_STATUS:
            io.optional = True
        inputs[name] = io
    outputs: dict[str, types.IOSpec] = {}
    for entry in spec.get("outputs") or []:
        name = input_name(entry["name"])
        ptype, cls = _v1_type(entry.get("type"))
        outputs[name] = types.IOSpec(
            name, parameter_type=ptype, artifact_class=cls, passing="path" if ptype else "value"
        )
    convert = _V1Placeholders(outputs, source).convert
    body: dict[str, Any] = {"image": container["image"]}
    for key in ("command", "args"):
        items = [ph.render(convert(item)) for item in container.get(key) or []]
        if items:
            body[key] = items
    env = container.get("env") or {}
    if env:
        body["env"] = [{"name": k, "value": ph.render(convert(v))} for k, v in env.items()]
    return YamlComponent(
        sanitize_name(str(spec.get("name") or "name")),
        inputs,
        outputs,
        spec.get("description"),
        text,
        container=body,
    )


# ----------------------------------------------------------------- v2 compiled IR
def _ir_io(definitions: dict[str, Any]) -> dict[str, types.IOSpec]:
    specs: dict[str, types.IOSpec] = {}
    for name, entry in (definitions.get("parameters") or {}).items():
        io = types.IOSpec(
            name,
            parameter_type=entry.get("parameterType"),
            optional=bool(entry.get("isOptional", "defaultValue" in entry)),
            description=entry.get("description"),
        )
        if "defaultValue" in entry:
            io.default = entry["defaultValue"]
        specs[name] = io
    for name, entry in (definitions.get("artifacts") or {}).items():
        title = entry["artifactType"]["schemaTitle"]
        cls = artifact_types.class_for_name(title) if title.startswith("system.") else None
        specs[name] = types.IOSpec(
            name,
            artifact_class=cls or _custom_artifact_class(title),
            is_list=bool(entry.get("isArtifactList")),
            optional=bool(entry.get("isOptional")),
            description=entry.get("description"),
        )
    return specs


def _docstring_of(command: list[Any]) -> str | None:
    """The Python function's docstring, for a lightweight component's description."""
    import ast

    for item in command:
        if isinstance(item, str) and "def " in item and ("import kfp" in item or "kubelab" in item):
            try:
                tree = ast.parse(item)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and ast.get_docstring(node):
                    return ast.get_docstring(node)
    return None


def _header_description(text: str) -> str | None:
    """The `# Description:` line of the compiler's comment header."""
    for line in text.splitlines()[:4]:
        if line.startswith(_DESCRIPTION):
            return line[len(_DESCRIPTION) :]
    return None


def _from_ir(
    spec: dict[str, Any], platform: dict[str, Any], text: str, source: str
) -> YamlComponent:
    raw_name = str(spec["pipelineInfo"].get("name", ""))
    key = sanitize_name(raw_name)
    definition = spec.get("components", {}).get(f"comp-{key}", spec["root"])
    executor = spec.get("deploymentSpec", {}).get("executors", {}).get(f"exec-{key}")
    inputs = _ir_io(definition.get("inputDefinitions") or {})
    outputs = _ir_io(definition.get("outputDefinitions") or {})
    for name, io in outputs.items():
        if not io.is_artifact:
            outputs[name].passing = "value"
    if executor is not None and "container" in executor:
        description = _docstring_of(executor["container"].get("command") or [])
        return YamlComponent(
            key,
            inputs,
            outputs,
            description or _header_description(text),
            text,
            container=copy.deepcopy(executor["container"]),
        )
    description = spec["pipelineInfo"].get("description") or _header_description(text)
    return YamlComponent(
        raw_name,
        inputs,
        outputs,
        description,
        text,
        pipeline_spec=copy.deepcopy(spec),
        platform_spec=copy.deepcopy(platform),
    )
