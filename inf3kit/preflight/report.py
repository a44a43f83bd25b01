"""What a preflight found: problems with their fixes, and what it checked or could not check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inf3kit.spec import LoadedSpec


@dataclass(frozen=True)
class Problem:
    """Something that would fail the deploy, with how to fix it."""

    check: str
    region: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.check} ({self.region}): {self.message}. Fix: {self.fix}"


@dataclass(frozen=True)
class Note:
    """A line of the report that is not a problem: what was checked, or why it could not be."""

    check: str
    region: str
    text: str

    def __str__(self) -> str:
        return f"{self.check} ({self.region}): {self.text}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: list[Note] = field(default_factory=list)
    unchecked: list[Note] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Context:
    """One region of one spec, the clients to reach it, and the report to fill."""

    loaded: LoadedSpec
    session: Any
    region: str
    report: Report
    stack_names: list[str] = field(default_factory=list)
    """The spec's stacks deployed to this region (each stack names its endpoint)."""
    endpoint_url: str | None = None
    """The local AWS emulator's address; None for AWS itself."""
    assembly_dir: Path | None = None
    """A synthesized cloud assembly to read the bootstrap version it requires from, if any."""
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str | None = None) -> Any:
        """One client per service and region, reused (tests stub them with botocore's Stubber)."""
        key = (service, region or self.region)
        if key not in self._clients:
            self._clients[key] = self.session.client(
                service, region_name=key[1], endpoint_url=self.endpoint_url
            )
        return self._clients[key]

    def problem(self, check: str, message: str, fix: str) -> None:
        self.report.problems.append(Problem(check, self.region, message, fix))

    def checked(self, check: str, text: str) -> None:
        self.report.checked.append(Note(check, self.region, text))

    def unchecked(self, check: str, text: str) -> None:
        self.report.unchecked.append(Note(check, self.region, text))
