"""The runtime must import and run on Python 3.10 (the AWS Neuron PyTorch DLC's Python).

The test suite itself runs on a newer Python, so this checks the source mechanically: every
module of ``inf3kit.runtime`` must parse with the 3.10 grammar and must not use names that only
exist from 3.11 on (``datetime.UTC``, ``enum.StrEnum``, ``asyncio.timeout``, ...), however they
are imported or aliased.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import inf3kit.runtime

RUNTIME = Path(inf3kit.runtime.__file__).parent
MODULES = sorted(RUNTIME.rglob("*.py"))

# Fully qualified names added in Python 3.11 or later (3.12 ones marked), none of them in 3.10.
NEWER_THAN_310 = frozenset(
    {
        "datetime.UTC",
        "enum.StrEnum",
        "enum.ReprEnum",
        "enum.EnumCheck",
        "enum.FlagBoundary",
        "enum.verify",
        "enum.member",
        "enum.nonmember",
        "enum.global_enum",
        "enum.show_flag_values",
        "tomllib",
        "typing.Self",
        "typing.Never",
        "typing.LiteralString",
        "typing.NotRequired",
        "typing.Required",
        "typing.TypeVarTuple",
        "typing.Unpack",
        "typing.assert_never",
        "typing.assert_type",
        "typing.reveal_type",
        "typing.dataclass_transform",
        "typing.get_overloads",
        "typing.clear_overloads",
        "typing.override",  # 3.12
        "typing.TypeAliasType",  # 3.12
        "asyncio.TaskGroup",
        "asyncio.timeout",
        "asyncio.timeout_at",
        "asyncio.Timeout",
        "asyncio.Runner",
        "asyncio.Barrier",
        "hashlib.file_digest",
        "contextlib.chdir",
        "itertools.batched",  # 3.12
        "logging.getLevelNamesMapping",
        "operator.call",
        "math.exp2",
        "math.cbrt",
        "wsgiref.types",
        "builtins.ExceptionGroup",
        "builtins.BaseExceptionGroup",
    }
)
# Methods new in 3.11 whose name is distinctive enough to flag on any object.
NEW_METHODS = frozenset({"add_note"})


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def newer_than_310(source: str, filename: str = "<source>") -> list[str]:
    """Every use of a 3.11+ feature in ``source``, as ``line: what``; [] when 3.10 has it all."""
    try:
        tree = ast.parse(source, filename, feature_version=(3, 10))
    except SyntaxError as exc:
        return [f"{exc.lineno}: not Python 3.10 syntax ({exc.msg})"]
    found = []
    aliases: dict[str, str] = {}  # local name -> fully qualified name it stands for
    uses_asyncio = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                uses_asyncio |= alias.name.split(".")[0] in ("asyncio", "concurrent")
                if alias.name in NEWER_THAN_310:
                    found.append(f"{node.lineno}: import {alias.name}")
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            uses_asyncio |= node.module.split(".")[0] in ("asyncio", "concurrent")
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                if node.module in NEWER_THAN_310 or qualified in NEWER_THAN_310:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                aliases[alias.asname or alias.name] = qualified
        elif type(node).__name__ == "TryStar":  # except* (the ast class only exists on 3.11+)
            found.append(f"{node.lineno}: except*")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in NEW_METHODS:
            found.append(f"{node.lineno}: .{node.attr}()")
        if isinstance(node, ast.ExceptHandler) and node.type is not None and uses_asyncio:
            names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if any(isinstance(n, ast.Name) and n.id == "TimeoutError" for n in names):
                found.append(
                    f"{node.lineno}: except TimeoutError (asyncio raises asyncio.TimeoutError, "
                    "not the builtin, on 3.10)"
                )
        if not isinstance(node, ast.Attribute | ast.Name):
            continue
        parts = _dotted(node)
        if parts is None:
            continue
        head = aliases.get(parts[0], f"builtins.{parts[0]}")
        qualified = ".".join([head, *parts[1:]])
        if qualified in NEWER_THAN_310:
            found.append(f"{node.lineno}: {'.'.join(parts)} ({qualified})")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def test_runtime_package_is_found() -> None:
    names = {m.name for m in MODULES}
    assert {"__init__.py", "app.py", "neuron_metrics.py", "settings.py"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(RUNTIME)))
def test_module_runs_on_python_310(module: Path) -> None:
    assert newer_than_310(module.read_text(), str(module)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from datetime import UTC, datetime\n", "1: from datetime import UTC"),
        ("import datetime\nx = datetime.UTC\n", "2: datetime.UTC (datetime.UTC)"),
        ("import datetime as dt\nx = dt.UTC\n", "2: dt.UTC (datetime.UTC)"),
        ("from datetime import UTC as utc\nx = utc\n", "2: utc (datetime.UTC)"),
        ("import enum\nclass A(enum.StrEnum): ...\n", "2: enum.StrEnum (enum.StrEnum)"),
        ("import tomllib\n", "1: import tomllib"),
        ("from typing import Self\n", "1: from typing import Self"),
        ("import typing\nx: typing.NotRequired[int]\n", "2: typing.NotRequired"),
        ("import asyncio\nasync def f():\n  async with asyncio.timeout(1): ...\n", "3: asyncio"),
        ("import asyncio as aio\nasync def f():\n  async with aio.TaskGroup(): ...\n", "3: aio"),
        ("import hashlib\nhashlib.file_digest(f, 'sha256')\n", "2: hashlib.file_digest"),
        ("raise ExceptionGroup('x', [ValueError()])\n", "1: ExceptionGroup"),
        ("try:\n  pass\nexcept* ValueError:\n  pass\n", "not Python 3.10 syntax"),
        ("e = ValueError()\ne.add_note('x')\n", "2: .add_note()"),
        ("import asyncio\ntry:\n  pass\nexcept TimeoutError:\n  pass\n", "4: except Timeout"),
        ("type X = int\n", "not Python 3.10 syntax"),
    ],
)
def test_checker_flags_newer_features(source: str, expected: str) -> None:
    found = newer_than_310(source)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import timezone\nx = timezone.utc\n",
        "import asyncio\nasync def f():\n  await asyncio.wait_for(g(), 1)\n",
        "with (open('a') as a, open('b') as b):\n  pass\n",  # parenthesised: 3.10 grammar
        "match x:\n  case 1:\n    pass\n",
        "from typing import TypeAlias\nX: TypeAlias = int | None\n",
        "class UTC: ...\nx = UTC\n",
    ],
)
def test_checker_accepts_python_310(source: str) -> None:
    assert newer_than_310(source) == []
