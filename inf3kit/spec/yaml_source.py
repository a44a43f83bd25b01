"""Read a spec's YAML defensively: UTF-8 only, no repeated keys, bounded alias expansion.

PyYAML silently keeps the last of two equal keys, and a few lines of nested aliases expand to
billions of nodes when the data is walked (the "billion laughs"). Both are refused here, with
the line, before anything validates the data.
"""

from __future__ import annotations

from typing import Any

import yaml

from inf3kit.spec.errors import Problem

MAX_NODES = 100_000
"""Nodes the document may expand to through aliases; real specs have a few hundred."""


def decode(raw: bytes) -> tuple[str | None, list[Problem]]:
    """The text of a UTF-8 file, or the problem naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [
            Problem(
                "",
                f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded. "
                "Fix: save the file as UTF-8",
                line,
            )
        ]


def structure_problems(root: yaml.Node | None) -> list[Problem]:
    """Repeated keys in any mapping, and an alias expansion beyond MAX_NODES."""
    if root is None:
        return []
    problems: list[Problem] = []
    sizes: dict[int, int] = {}
    _walk(root, "", problems, sizes)
    if sizes[id(root)] > MAX_NODES:
        problems.append(
            Problem(
                "",
                f"the document expands to more than {MAX_NODES:,} values through YAML aliases "
                "(anchors referenced inside each other). Fix: write the values out, or use "
                "fewer nested aliases",
                root.start_mark.line + 1,
            )
        )
    return problems


def _walk(node: yaml.Node, path: str, problems: list[Problem], sizes: dict[int, int]) -> int:
    """Expanded size of `node`, memoized per node: an alias shares its anchor's node, so it is
    counted (and checked) once however often it is referenced."""
    if id(node) in sizes:
        return sizes[id(node)]
    size = 1
    if isinstance(node, yaml.MappingNode):
        keys: dict[Any, int] = {}
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    problems.append(
                        Problem(
                            child,
                            f"the key {key.value!r} appears twice (first at line "
                            f"{keys[key.value]}); YAML would keep only the last. "
                            "Fix: remove or merge one of them",
                            key.start_mark.line + 1,
                        )
                    )
                keys.setdefault(key.value, key.start_mark.line + 1)
            size += _walk(value, child, problems, sizes)
            size = min(size, MAX_NODES + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            size = min(size + _walk(item, f"{path}[{index}]", problems, sizes), MAX_NODES + 1)
    sizes[id(node)] = size
    return size
