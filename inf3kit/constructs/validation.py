"""One format for every construct's validation error: all problems at once, one per line."""

from __future__ import annotations

from constructs import IConstruct


class ConstructError(ValueError):
    """Props a construct refuses: every problem at once, and which construct refused them.

    `problems` holds one line per problem (each names the prop, the value and the fix) and
    `path` the construct's path in the tree, so tools can report them without parsing the text.
    """

    def __init__(self, kind: str, construct: IConstruct, problems: list[str]) -> None:
        self.kind = kind
        self.path = construct.node.path
        self.problems = list(problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"{kind} {construct.node.id}: {count}\n" + "\n".join(f"  - {p}" for p in problems)
        )


def raise_if_problems(kind: str, construct: IConstruct, problems: list[str]) -> None:
    """Raise `ConstructError` listing every problem, or return if there are none.

    The first line names the construct and the count (`NeuronFleet Fleet: 2 problems`), then
    each problem follows on its own `  - ` line, so a synthesis reports everything to fix.
    """
    if problems:
        raise ConstructError(kind, construct, problems)
