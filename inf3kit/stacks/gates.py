"""Quality gates over a synthesized cloud assembly: cdk-nag, cfn-lint and checkov.

The same functions back `inf3kit synth`'s summary and the test suite, so what a user sees and
what CI enforces cannot drift apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NAG_REPORT = "validation-report.json"


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str
    message: str


@dataclass
class GateResult:
    gate: str
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and not self.findings

    def summary(self) -> str:
        if self.skipped:
            return f"{self.gate}: not run ({self.skipped})"
        verdict = "pass" if self.passed else f"{len(self.findings)} finding(s)"
        return f"{self.gate}: {verdict}, {self.suppressed} acknowledged with a reason"


def templates(assembly_dir: Path) -> list[Path]:
    """The stack templates the assembly's manifest lists, nested stage assemblies included.

    The manifest, not a glob: CDK never deletes an output folder's old files, so a stack that
    was renamed or removed leaves a stale template the gates must not judge.
    """
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    found: list[Path] = []
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            found.append(assembly_dir / properties["templateFile"])
        elif artifact.get("type") == "cdk:cloud-assembly":
            found += templates(assembly_dir / properties["directoryName"])
    return sorted(found)


def nag_gate(assembly_dir: Path) -> GateResult:
    """Read the policy-validation report cdk-nag's AwsSolutions plugin wrote at synthesis."""
    result = GateResult("cdk-nag")
    report = assembly_dir / NAG_REPORT
    if not report.exists():
        return result
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        result.suppressed += len(plugin.get("suppressedViolations", []))
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                result.findings.append(
                    Finding(
                        rule=violation["ruleName"],
                        resource=construct.get("constructPath", "?"),
                        message=violation.get("description", ""),
                    )
                )
    return result


def cfn_lint_gate(paths: Iterable[Path]) -> GateResult:
    """cfn-lint errors (E*) fail the gate; warnings and informational matches do not."""
    try:
        from cfnlint.api import ManualArgs, lint_file
    except ImportError:
        return GateResult(
            "cfn-lint", skipped="cfn-lint is not installed (pip install inf3kit[dev])"
        )
    result = GateResult("cfn-lint")
    for path in paths:
        for match in lint_file(path, ManualArgs(regions=["us-east-1"])):
            if match.rule.id.startswith("E"):
                result.findings.append(
                    Finding(match.rule.id, f"{path.name}:{match.linenumber}", match.message)
                )
    return result


def checkov_gate(paths: Iterable[Path]) -> GateResult:
    """checkov on the templates, offline; checks skipped in resource metadata count as such."""
    exe = shutil.which("checkov") or shutil.which("checkov", path=str(Path(sys.executable).parent))
    if exe is None:
        return GateResult("checkov", skipped="checkov is not on PATH (`make setup` installs it)")
    args = [exe, "--framework", "cloudformation", "--skip-download", "-o", "json", "--quiet"]
    for path in paths:
        args += ["-f", str(path)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    try:
        reports = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return GateResult("checkov", findings=[Finding("run", "checkov", proc.stderr[-500:])])
    result = GateResult("checkov")
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results", {})
        result.suppressed += report.get("summary", {}).get("skipped", 0)
        for check in results.get("failed_checks", []):
            result.findings.append(
                Finding(
                    check["check_id"],
                    f"{Path(check.get('file_path', '')).name}:{check.get('resource', '')}",
                    check.get("check_name", ""),
                )
            )
    return result


def run_gates(assembly_dir: Path, *, checkov: bool = True) -> list[GateResult]:
    paths = templates(assembly_dir)
    gates = [nag_gate(assembly_dir), cfn_lint_gate(paths)]
    if checkov:
        gates.append(checkov_gate(paths))
    return gates
