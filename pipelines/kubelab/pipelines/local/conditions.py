"""Evaluate the CEL subset that KFP writes into `triggerPolicy.condition`.

KFP compiles `dsl.If(a.output > 5)` into strings such as
``int(inputs.parameter_values['pipelinechannel--a-Output']) > 5`` and joins
branches with `!`, `&&`, `||`. A tiny recursive-descent parser is enough and keeps
user expressions away from `eval`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubelab.pipelines.errors import KubelabError

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+(?:[eE][-+]?\d+)?)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[|\]|\.|,)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character at {pos}: {text[pos : pos + 10]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _Parser:
    def __init__(self, text: str, values: dict[str, Any]) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.values = values

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ValueError("unexpected end of expression")
        tok = self.tokens[self.i]
        if expected is not None and tok[1] != expected:
            raise ValueError(f"expected {expected!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.or_expr()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.peek()!r}")
        return value

    def or_expr(self) -> Any:
        value = self.and_expr()
        while self.peek() == "||":
            self.take()
            right = self.and_expr()
            value = bool(value) or bool(right)
        return value

    def and_expr(self) -> Any:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            value = bool(value) and bool(right)
        return value

    def comparison(self) -> Any:
        left = self.unary()
        op = self.peek()
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            right = self.unary()
            return _compare(left, op, right)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not bool(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_expr()
            self.take(")")
            return value
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return (
                json.loads('"' + text[1:-1].replace('"', '\\"') + '"')
                if text[0] == "'"
                else json.loads(text)
            )
        if kind == "name":
            if text == "true":
                return True
            if text == "false":
                return False
            if text == "null":
                return None
            if text in ("int", "double", "float", "string", "bool") and self.peek() == "(":
                self.take("(")
                arg = self.or_expr()
                self.take(")")
                return _cast(text, arg)
            if text == "inputs":
                self.take(".")
                _, field = self.take()
                if field != "parameter_values":
                    raise ValueError(f"only inputs.parameter_values is supported, got {field}")
                self.take("[")
                _, key_text = self.take()
                self.take("]")
                key = key_text[1:-1]
                if key not in self.values:
                    raise ValueError(f"unknown input {key!r}")
                return self.values[key]
        raise ValueError(f"unexpected {text!r}")


def _cast(kind: str, value: Any) -> Any:
    if kind == "int":
        return int(float(value)) if isinstance(value, str) else int(value)
    if kind in ("double", "float"):
        return float(value)
    if kind == "bool":
        return value.lower() == "true" if isinstance(value, str) else bool(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _compare(left: Any, op: str, right: Any) -> bool:
    # CEL compares numbers across int/double; strings only with strings. A number met
    # by a string is its text (protobuf's 2.0 reads "2"): an untyped loop item that
    # holds 2, which KFP compares with '2'.
    if isinstance(left, str) != isinstance(right, str) and None not in (left, right):
        left, right = _cast("string", left), _cast("string", right)
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def evaluate_condition(condition: str, parameter_values: dict[str, Any], *, task: str) -> bool:
    """True when the task should run; a malformed condition is a KubelabError naming it."""
    try:
        return bool(_Parser(condition, parameter_values).parse())
    except (ValueError, TypeError) as error:
        raise KubelabError(
            f"task {task!r}: cannot evaluate condition {condition!r}: {error}", task=task
        ) from error
