"""The `inf3kit` command: validate and synthesize specs, browse the catalog, run the runtime.

Heavy imports (the CDK, torch) happen inside the commands, so `inf3kit serve` starts in a
container that has only `inf3kit[serve]` installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inf3kit.catalog import CatalogError, load_catalog
from inf3kit.spec import SpecError, load_spec

app = typer.Typer(
    help="Deploy models compiled for AWS Inferentia and Trainium, and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `| less`) gets a fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

SpecArg = Annotated[Path, typer.Argument(help="the deployment spec (inf3kit.yaml)")]


def _load(spec: Path):
    try:
        return load_spec(spec)
    except SpecError as exc:
        err.print(f"[bold red]{exc.source}[/]: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            err.print(f"  [red]-[/] {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a spec and list every problem with its path, line and fix (exit 1 if any)."""
    loaded = _load(spec)
    parts = [p for p in ("endpoint", "fleet") if getattr(loaded.spec, p) is not None]
    console.print(f"[green]ok[/] {spec}: service {loaded.spec.name!r} with {' and '.join(parts)}")


@app.command()
def synth(
    spec: SpecArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="cloud assembly dir")] = Path(
        "cdk.out"
    ),
    checkov: Annotated[bool, typer.Option(help="run the checkov gate")] = True,
) -> None:
    """Synthesize CloudFormation in-process and print stacks, resources and the gate summary."""
    _load(spec)
    from inf3kit.stacks import synth as synthesize

    try:
        result = synthesize(spec, output, checkov=checkov)
    except ValueError as exc:
        err.print(f"[bold red]synthesis refused[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    for name, counts in result.stacks.items():
        table = Table(title=f"stack {name}: {sum(counts.values())} resources")
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for rtype, count in counts.items():
            table.add_row(rtype, str(count))
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    for gate in result.gates:
        colour = "green" if gate.passed else ("yellow" if gate.skipped else "red")
        console.print(f"[{colour}]{gate.summary()}[/]", highlight=False)
        for finding in gate.findings:
            console.print(f"    {finding.rule} {finding.resource}: {finding.message}", markup=False)
    console.print(f"templates written to {result.assembly_dir}/")
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def catalog(
    family: Annotated[str | None, typer.Option(help="only this family, e.g. inf3")] = None,
    file: Annotated[
        Path | None, typer.Option("--catalog", help="a catalog override file to merge")
    ] = None,
) -> None:
    """List the known instance types, their accelerators, prices and status."""
    try:
        cat = load_catalog(file)
    except CatalogError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    if family is not None and family not in cat.families:
        err.print(f"[red]unknown family {family!r}[/]; known: {', '.join(cat.families)}")
        raise typer.Exit(1)
    table = Table(title="inf3kit hardware catalog")
    table.add_column("type", no_wrap=True)
    table.add_column("accelerator", no_wrap=True)
    for column in ("chips", "cores", "accel GiB", "vCPU", "GiB", "$/h"):
        table.add_column(column, justify="right")
    table.add_column("status", no_wrap=True)
    types = cat.types(family=family)
    for t in types:
        price = f"{t.price_usd_per_hour:.4g}" if t.price_usd_per_hour is not None else "-"
        status = "[yellow]provisional[/]" if t.provisional else "ga"
        table.add_row(
            t.name,
            t.accelerator,
            str(t.chips),
            str(t.neuron_cores or "-"),
            f"{t.accelerator_memory_gib:g}",
            str(t.vcpu),
            f"{t.memory_gib:g}",
            price,
            status,
        )
    console.print(table)
    shown = {t.family for t in types}
    for fam in shown:
        sample = next(t for t in types if t.family == fam)
        console.print(f"[dim]{fam} prices: {sample.price_source} ({sample.price_as_of})[/]")
        for key, source in sorted(sample.sources.items()):
            console.print(f"[yellow]{fam} {key}[/]: {source}", highlight=False)


def main() -> None:
    app()
