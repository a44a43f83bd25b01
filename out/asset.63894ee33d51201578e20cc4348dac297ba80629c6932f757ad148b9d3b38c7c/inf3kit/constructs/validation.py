"""One format for every construct's validation error: all problems at once, one per line."""

from __future__ import annotations


def raise_if_problems(kind: str, construct_id: str, problems: list[str]) -> None:
    """Raise `ValueError` listing every problem, or return if there are none.

    The first line names the construct and the count (`NeuronFleet Fleet: 2 problems`), then
    each problem follows on its own `  - ` line, so a synthesis reports everything to fix.
    """
    if not problems:
        return
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    raise ValueError(f"{kind} {construct_id}: {count}\n" + "\n".join(f"  - {p}" for p in problems))
