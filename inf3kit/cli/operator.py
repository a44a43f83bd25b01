"""Operator commands: validate, synth, catalog, preflight, deploy, destroy, demo, local."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table
from rich.text import Text

from inf3kit.catalog import CatalogError, load_catalog
from inf3kit.spec import LoadedSpec

if TYPE_CHECKING:
    from inf3kit.stacks import SynthResult

from inf3kit.cli.shared import (
    LocalFlag,
    OutOption,
    PortOption,
    SpecArg,
    YesOption,
    app,
    assembly_dir,
    console,
    err,
    load_or_exit,
    print_error,
)

PANEL = "Operate services"


@app.command(rich_help_panel=PANEL)
def validate(spec: SpecArg) -> None:
    """Check a spec and list every problem with its path, line and fix (exit 1 if any)."""
    loaded = load_or_exit(spec)
    parts = [p for p in ("endpoint", "fleet") if getattr(loaded.spec, p) is not None]
    console.print(f"[green]ok[/] {spec}: service {loaded.spec.name!r} with {' and '.join(parts)}")
    for line in loaded.llm_summary():
        console.print(f"  llm {line}", highlight=False, markup=False)
    from inf3kit.plan.for_spec import knees_per_minute
    from inf3kit.spec.capacity import scaling_target_warnings

    for warning in scaling_target_warnings(loaded.spec, knees_per_minute(loaded)):
        console.print(Text.assemble(("warning ", "yellow"), warning), highlight=False)


@app.command(rich_help_panel=PANEL)
def synth(
    spec: SpecArg,
    output: OutOption = None,
    checkov: Annotated[bool, typer.Option(help="run the checkov gate")] = True,
) -> None:
    """Synthesize CloudFormation in-process and print stacks, resources and the gate summary."""
    loaded = load_or_exit(spec)
    from inf3kit.stacks import synth as synthesize

    try:
        result = synthesize(spec, assembly_dir(output, loaded), checkov=checkov)
    except ValueError as exc:
        print_error("synthesis refused", exc)
        raise typer.Exit(1) from None
    _print_synth(result)
    console.print(f"templates written to {result.assembly_dir}/")
    if not result.passed:
        raise typer.Exit(1)


def _print_synth(result: SynthResult) -> None:
    for name, counts in result.stacks.items():
        table = Table(title=f"stack {name}: {sum(counts.values())} resources")
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for rtype, count in counts.items():
            table.add_row(rtype, str(count))
        console.print(table)
    for warning in result.warnings:
        console.print(Text.assemble(("warning ", "yellow"), warning), highlight=False)
    for gate in result.gates:
        colour = "green" if gate.passed else ("yellow" if gate.skipped else "red")
        console.print(f"[{colour}]{gate.summary()}[/]", highlight=False)
        for finding in gate.findings:
            console.print(f"    {finding.rule} {finding.resource}: {finding.message}", markup=False)


catalog_app = typer.Typer(help="The hardware catalog and its prices.")
app.add_typer(catalog_app, name="catalog", rich_help_panel=PANEL)
CatalogFile = Annotated[
    Path | None, typer.Option("--catalog", help="a catalog override file to merge")
]


@catalog_app.callback(invoke_without_command=True)
def catalog(
    ctx: typer.Context,
    family: Annotated[str | None, typer.Option(help="only this family, e.g. inf3")] = None,
    file: CatalogFile = None,
) -> None:
    """List the known instance types, their accelerators, prices and status."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        cat = load_catalog(file)
    except CatalogError as exc:
        print_error("catalog refused", exc)
        raise typer.Exit(1) from None
    if family is not None and family not in cat.families:
        print_error(f"unknown family {family!r}", f"known: {', '.join(cat.families)}")
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


@catalog_app.command("prices")
def catalog_prices(
    region: Annotated[str, typer.Option(help="the region to price")] = "us-east-1",
    refresh: Annotated[
        bool, typer.Option("--refresh", help="fetch from the AWS Price List API (credentials)")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="override file --refresh updates (default: $INF3KIT_CATALOG)"),
    ] = None,
    file: CatalogFile = None,
) -> None:
    """Show every type's price in a region with its source and date; --refresh updates them."""
    from inf3kit.plan.commands import list_prices, refresh_catalog_prices

    try:
        if refresh:
            refresh_catalog_prices(console, region, out, file)
        else:
            console.print(list_prices(load_catalog(file), region))
    except (CatalogError, BotoCoreError, ClientError, OSError) as exc:
        print_error("prices failed", exc)
        raise typer.Exit(1) from None


@app.command(rich_help_panel=PANEL)
def deploy(
    spec: SpecArg,
    local: LocalFlag = False,
    port: PortOption = None,
    output: OutOption = None,
    yes: YesOption = False,
) -> None:
    """Deploy a spec's stacks with the CDK CLI: to the local AWS emulator, or to your AWS."""
    loaded = load_or_exit(spec)
    from inf3kit import deploy as dep

    if local and loaded.spec.delivery is not None:
        err.print(
            f"{spec} has a `delivery:` section, so its app is a CodePipeline that deploys from "
            "Git; the local emulator cannot run pipelines. Fix: deploy the pipeline to AWS "
            "(docs/gitops.md), or try the service locally from a copy without `delivery:`",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)

    outdir = assembly_dir(output, loaded)
    if not local:
        _run_preflight(loaded, None, None, None, outdir)
        approval = ["--require-approval", "never"] if yes else []
        _run_cdk_on_aws(["deploy", "--all", *approval], spec, outdir)
        return
    try:
        aws, started = dep.start(port)
    except dep.LocalAwsError as exc:
        print_error("local deploy failed", exc)
        raise typer.Exit(1) from None
    console.print(f"local AWS API on {aws.endpoint} ({'started' if started else 'reused'})")
    try:
        reports = dep.deploy(aws, spec, outdir, on_line=_cdk_progress)
    except (dep.LocalAwsError, dep.CdkCliError, BotoCoreError, ClientError) as exc:
        print_error("local deploy failed", exc)
        if started:
            dep.stop(aws)
            err.print("the local AWS emulator was stopped; nothing is left running")
        else:
            err.print(
                f"the local AWS emulator at {aws.endpoint} keeps what was deployed before "
                "this attempt; `inf3kit local stop` stops it"
            )
        raise typer.Exit(1) from None
    _print_reports(reports)
    console.print(
        f"[green]deployed[/] into the local AWS emulator at {aws.endpoint}; "
        f"`inf3kit destroy {spec} --local` removes it and stops the emulator"
    )


@app.command(rich_help_panel=PANEL)
def preflight(
    spec: SpecArg,
    region: Annotated[
        str | None, typer.Option(help="check this region (default: each stage's, or yours)")
    ] = None,
    local: LocalFlag = False,
    output: OutOption = None,
) -> None:
    """Ask the account whether a deploy can run: offerings, quotas, AMI, bundle, image,
    bootstrap. Print every problem with its fix, and what could not be checked (exit 1 if any)."""
    loaded = load_or_exit(spec)
    endpoint_url = None
    session = None
    if local:
        from inf3kit.deploy import running
        from inf3kit.deploy.emulator import REGION

        aws = running()
        if aws is None:
            print_error("no local AWS emulator runs", "start one: `inf3kit deploy SPEC --local`")
            raise typer.Exit(1)
        session, endpoint_url = aws.session(region or REGION), aws.endpoint
    outdir = assembly_dir(output, loaded)
    _run_preflight(loaded, region, session, endpoint_url, outdir, show_checked=True)
    console.print("[green]preflight passed[/]: nothing found that would fail the deploy")


def _run_preflight(
    loaded: LoadedSpec,
    region: str | None,
    session: object | None,
    endpoint_url: str | None,
    outdir: Path,
    *,
    show_checked: bool = False,
) -> None:
    """Run the preflight, print what it could not check and its problems; exit 1 on problems."""
    import boto3

    from inf3kit.preflight import PreflightError, run

    try:
        report = run(
            loaded,
            session or boto3.Session(),
            region,
            endpoint_url=endpoint_url,
            assembly_dir=outdir,
        )
    except PreflightError as exc:
        print_error("preflight", exc)
        raise typer.Exit(1) from None
    for note in report.checked if show_checked else ():
        console.print(Text.assemble(("checked ", "green"), str(note)), highlight=False)
    for note in report.unchecked:
        err.print(Text.assemble(("not checked ", "yellow"), str(note)), highlight=False)
    for problem in report.problems:
        err.print(
            Text.assemble(
                ("problem ", "bold red"),
                f"{problem.check} ({problem.region}): {problem.message}\n",
                ("  fix: ", "bold"),
                problem.fix,
            ),
            highlight=False,
        )
    if not report.ok:
        err.print(
            f"{len(report.problems)} problem(s) would fail the deploy; fix them and run "
            "`inf3kit preflight` again",
            highlight=False,
        )
        raise typer.Exit(1)


@app.command(rich_help_panel=PANEL)
def destroy(
    spec: SpecArg,
    local: LocalFlag = False,
    output: OutOption = None,
    yes: YesOption = False,
) -> None:
    """Destroy a spec's stacks; with --local, stop the emulator once it holds no other stack."""
    loaded = load_or_exit(spec)
    from inf3kit import deploy as dep

    outdir = assembly_dir(output, loaded)
    if not local:
        _run_cdk_on_aws(["destroy", "--all", *(["--force"] if yes else [])], spec, outdir)
        return
    aws = dep.running()
    if aws is None:
        console.print("no local AWS emulator is running: nothing to destroy")
        return
    try:
        dep.destroy(aws, spec, outdir, on_line=_cdk_progress)
        others = dep.remaining_stacks(aws)
    except (dep.CdkCliError, BotoCoreError, ClientError) as exc:
        print_error("destroy failed", exc)
        err.print(f"the local AWS emulator at {aws.endpoint} keeps running with its stacks")
        raise typer.Exit(1) from None
    console.print("[green]destroyed[/]")
    if others:
        console.print(
            f"the local AWS emulator keeps running: it holds {', '.join(others)}",
            highlight=False,
        )
        return
    dep.stop(aws)
    console.print("the local AWS emulator is stopped")


def _run_cdk_on_aws(args: list[str], spec: Path, output: Path) -> None:
    """A thin wrapper: the CDK CLI with the user's own credentials and configuration."""
    from inf3kit.deploy import CdkCliError, cdk_cli

    try:
        cdk_cli.run(args, spec=spec, env={}, outdir=output, keep_aws_env=True, interactive=True)
    except CdkCliError as exc:
        print_error(f"cdk {args[0]} failed", exc)
        raise typer.Exit(1) from None


def _cdk_progress(line: str) -> None:
    if any(word in line for word in ("CREATE_", "DELETE_", "UPDATE_", "✅", "❌", "Error")):
        console.print(Text(line.strip(), style="dim"), highlight=False)


def _print_reports(reports: list) -> None:  # list[StackReport], imported lazily
    for report in reports:
        table = Table(title=f"stack {report.name}: {report.status}")
        table.add_column("resource type")
        table.add_column("deployed", justify="right")
        table.add_column("skipped by the emulator", justify="right")
        for rtype in sorted(set(report.deployed) | set(report.skipped)):
            if rtype:
                table.add_row(rtype, str(report.deployed[rtype]), str(report.skipped[rtype] or ""))
        console.print(table)
        if report.changes is not None:
            console.print(
                f"  {len(report.changes)} resource(s) changed"
                if report.changes
                else "  no changes: the deployed stack already matches the spec",
                highlight=False,
            )
        for change in report.changes or ():
            console.print(f"    {change}", highlight=False, markup=False)
        for key, value in report.outputs.items():
            console.print(f"  output {key} = {value}", highlight=False, markup=False)
        if report.skipped:
            console.print(
                "[yellow]the emulator skipped[/] "
                + ", ".join(sorted(report.skipped))
                + ": they are checked in the template tests, not deployed here"
            )


@app.command(rich_help_panel=PANEL)
def demo(
    spec: Annotated[Path, typer.Argument(help="the spec to deploy")] = Path("examples/demo.yaml"),
    bundle: Annotated[Path, typer.Option(help="the locally built bundle archive")] = Path(
        "build/demo/model.tar.gz"
    ),
    output: OutOption = None,
) -> None:
    """The whole path on this machine, then stop everything it started.

    Synthesize with the gates, deploy into the local AWS emulator, fetch the bundle back from
    its S3, serve it with the runtime and send a real inference request.
    """
    from inf3kit import deploy as dep
    from inf3kit.deploy import demo as flow
    from inf3kit.stacks import synth as synthesize

    loaded = load_or_exit(spec)
    output = assembly_dir(output, loaded)
    steps = 6
    console.rule(f"[1/{steps}] validate {spec}")
    console.print(f"[green]ok[/] service {loaded.spec.name!r}")
    console.rule(f"[2/{steps}] synthesize and run the gates")
    result = synthesize(spec, output)
    _print_synth(result)
    if not result.passed:
        raise typer.Exit(1)
    console.rule(f"[3/{steps}] deploy into the local AWS emulator")
    aws, started = None, False
    try:
        aws, started = dep.start()
        console.print(f"local AWS API on {aws.endpoint}; log: {aws.log_file}")
        reports = dep.deploy(aws, spec, output, on_line=_cdk_progress)
        _print_reports(reports)
        console.rule(f"[4/{steps}] fetch the deployed bundle back from the local S3")
        url = reports[0].outputs["ModelDataUrl"]
        fetched = flow.fetch_bundle(aws, url, bundle, aws.state_dir / "fetched" / "model.tar.gz")
        console.print(f"{url}\n  = {bundle} (sha256 {fetched.sha256[:16]}...)", highlight=False)
        console.rule(f"[5/{steps}] serve it with the inf3kit runtime")
        with flow.serving(fetched.path, aws.state_dir / "runtime.log") as base:
            console.print(f"runtime ready at {base} (every variant checksum verified on load)")
            console.rule(f"[6/{steps}] a real inference request")
            features = [[round(0.1 * ((i * 7) % 11) - 0.5, 2) for i in range(32)]]
            answer = flow.invoke(base, features)
            console.print(f"POST {base}/invocations -> {json.dumps(answer)}", highlight=False)
        dep.destroy(aws, spec, output, on_line=_cdk_progress)
    except (
        dep.LocalAwsError,
        dep.CdkCliError,
        flow.DemoError,
        KeyError,
        BotoCoreError,
        ClientError,
    ) as exc:
        print_error("demo failed", exc)
        raise typer.Exit(1) from None
    finally:
        # An emulator that ran before the demo holds the user's deployments: it keeps running.
        if aws is not None and started:
            dep.stop(aws)
        console.print("stopped everything the demo started")


local_app = typer.Typer(help="The local AWS emulator used by `deploy --local`.")
app.add_typer(local_app, name="local", rich_help_panel=PANEL)


@local_app.command("status")
def local_status() -> None:
    """Say whether the local AWS emulator runs, and where."""
    from inf3kit.deploy import running

    aws = running()
    console.print(f"running on {aws.endpoint} (pid {aws.pid})" if aws else "not running")


@local_app.command("stop")
def local_stop() -> None:
    """Stop the local AWS emulator; everything deployed into it is gone."""
    from inf3kit.deploy import running, stop

    aws = running()
    if aws is not None:
        stop(aws)
    console.print("stopped" if aws else "not running")
