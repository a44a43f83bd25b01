"""The `inf3kit` command: validate and synthesize specs, browse the catalog, run the runtime.

Heavy imports (the CDK, torch) happen inside the commands, so `inf3kit serve` starts in a
container that has only `inf3kit[serve]` installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inf3kit.catalog import CatalogError, load_catalog
from inf3kit.spec import LoadedSpec, Spec, SpecError, load_spec

if TYPE_CHECKING:
    from inf3kit.stacks import SynthResult

app = typer.Typer(
    help="Deploy models compiled for AWS Inferentia and Trainium, and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `| less`) gets a fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

SpecArg = Annotated[Path, typer.Argument(help="the deployment spec (inf3kit.yaml)")]
OutOption = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="cloud assembly dir (default: cdk.out/<spec name>)"),
]


def _assembly_dir(output: Path | None, loaded: LoadedSpec) -> Path:
    """Each spec gets its own assembly folder, so what one spec synthesized (templates, Docker
    assets) is never read, gated or deployed with another."""
    # Absolute: the CDK's Node.js process resolves relative paths against its own working
    # directory, which is not the caller's once the caller changed directory (tests, notebooks).
    return (output or Path("cdk.out") / loaded.spec.name).absolute()


def _load(spec: Path) -> LoadedSpec:
    try:
        return load_spec(spec)
    except SpecError as exc:
        _print_spec_error(exc)
        raise typer.Exit(1) from None


def _print_spec_error(exc: SpecError, what: str = "") -> None:
    _error(exc.source, f"{what}{len(exc.problems)} problem(s)")
    for problem in exc.problems:
        err.print(Text.assemble(("  - ", "red"), str(problem)), highlight=False)


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a spec and list every problem with its path, line and fix (exit 1 if any)."""
    loaded = _load(spec)
    parts = [p for p in ("endpoint", "fleet") if getattr(loaded.spec, p) is not None]
    console.print(f"[green]ok[/] {spec}: service {loaded.spec.name!r} with {' and '.join(parts)}")
    from inf3kit.plan.for_spec import knees_per_minute
    from inf3kit.spec.capacity import scaling_target_warnings

    for warning in scaling_target_warnings(loaded.spec, knees_per_minute(loaded)):
        console.print(Text.assemble(("warning ", "yellow"), warning), highlight=False)


@app.command()
def synth(
    spec: SpecArg,
    output: OutOption = None,
    checkov: Annotated[bool, typer.Option(help="run the checkov gate")] = True,
) -> None:
    """Synthesize CloudFormation in-process and print stacks, resources and the gate summary."""
    loaded = _load(spec)
    from inf3kit.stacks import synth as synthesize

    try:
        result = synthesize(spec, _assembly_dir(output, loaded), checkov=checkov)
    except ValueError as exc:
        _error("synthesis refused", exc)
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
app.add_typer(catalog_app, name="catalog")
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
        _error("catalog refused", exc)
        raise typer.Exit(1) from None
    if family is not None and family not in cat.families:
        _error(f"unknown family {family!r}", f"known: {', '.join(cat.families)}")
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
        _error("prices failed", exc)
        raise typer.Exit(1) from None


@app.command()
def profile(
    bundle: Annotated[Path, typer.Argument(help="bundle directory or .tar.gz")],
    url: Annotated[
        str | None, typer.Option(help="measure a running server at this URL instead")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="variant target (in-process: default this host's)")
    ] = None,
    batch_size: Annotated[
        list[int] | None, typer.Option(help="compiled batch size to measure (repeatable)")
    ] = None,
    concurrency: Annotated[
        list[int] | None, typer.Option(help="clients in flight (repeatable; default 1..4x batch)")
    ] = None,
    seconds: Annotated[float, typer.Option(help="measuring time per point")] = 2.0,
    out: Annotated[Path | None, typer.Option(help="default: stored next to the bundle")] = None,
) -> None:
    """Measure throughput and latency per replica; store the profile next to the bundle."""
    from inf3kit.plan.commands import run_profile

    try:
        run_profile(console, bundle, url, target, batch_size, concurrency, seconds, out)
    except (ValueError, OSError) as exc:
        _error("profile failed", exc)
        raise typer.Exit(1) from None


@app.command()
def plan(
    spec: SpecArg,
    rps: Annotated[float, typer.Option(help="target load, requests (one row each) per second")],
    p99_ms: Annotated[float, typer.Option(help="p99 latency target in milliseconds")],
    profile: Annotated[
        list[Path] | None, typer.Option(help="profile JSON (repeatable; default: stored ones)")
    ] = None,
    region: Annotated[str, typer.Option(help="region for prices")] = "us-east-1",
    headroom: Annotated[float, typer.Option(help="share kept below the knee")] = 0.2,
    model_gib: Annotated[
        float | None, typer.Option(help="accelerator memory per replica (default: variant size)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    html: Annotated[Path | None, typer.Option(help="write an HTML report with charts")] = None,
    apply: Annotated[bool, typer.Option(help="write the choice into the spec")] = False,
    choose: Annotated[
        list[str] | None, typer.Option(help="with --apply: this type (default: cheapest GA)")
    ] = None,
    peak: Annotated[float, typer.Option(help="with --apply: max capacity = min x peak")] = 2.0,
) -> None:
    """Instances, monthly cost and $ per million inferences per instance type for a load."""
    from inf3kit.plan.commands import run_plan

    loaded = _load(spec)
    try:
        run_plan(
            console,
            loaded,
            spec,
            rps=rps,
            p99_ms=p99_ms,
            profiles=profile or [],
            region=region,
            headroom=headroom,
            model_gib=model_gib,
            as_json=as_json,
            html=html,
            apply=apply,
            choose=choose or [],
            peak=peak,
        )
    except SpecError as exc:
        _print_spec_error(exc, "--apply refused, the spec is unchanged: ")
        raise typer.Exit(1) from None
    except (ValueError, OSError) as exc:
        _error("plan failed", exc)
        raise typer.Exit(1) from None


LocalFlag = Annotated[
    bool, typer.Option("--local", help="use the local AWS emulator (moto), not your AWS account")
]
PortOption = Annotated[int | None, typer.Option(help="emulator port (default: reuse or pick)")]
YesOption = Annotated[
    bool, typer.Option("--yes", help="on AWS: do not ask before IAM changes or deletions")
]


@app.command()
def deploy(
    spec: SpecArg,
    local: LocalFlag = False,
    port: PortOption = None,
    output: OutOption = None,
    yes: YesOption = False,
) -> None:
    """Deploy a spec's stacks with the CDK CLI: to the local AWS emulator, or to your AWS."""
    loaded = _load(spec)
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

    outdir = _assembly_dir(output, loaded)
    if not local:
        _preflight(loaded.spec)
        approval = ["--require-approval", "never"] if yes else []
        _run_cdk_on_aws(["deploy", "--all", *approval], spec, outdir)
        return
    try:
        aws, started = dep.start(port)
    except dep.LocalAwsError as exc:
        _error("local deploy failed", exc)
        raise typer.Exit(1) from None
    console.print(f"local AWS API on {aws.endpoint} ({'started' if started else 'reused'})")
    try:
        reports = dep.deploy(aws, spec, outdir, on_line=_cdk_progress)
    except (dep.LocalAwsError, dep.CdkCliError, BotoCoreError, ClientError) as exc:
        _error("local deploy failed", exc)
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


def _preflight(spec: Spec) -> None:
    """Stop before the CDK CLI runs when the deployed state already decides the deploy fails."""
    import boto3

    from inf3kit.preflight import instance_type_change_problems

    try:
        problems = instance_type_change_problems(spec, boto3.Session())
    except (BotoCoreError, ClientError) as exc:
        _error("preflight skipped, cannot read the account", exc)
        return
    if problems:
        for problem in problems:
            _error("preflight", problem)
        raise typer.Exit(1)


@app.command()
def destroy(
    spec: SpecArg,
    local: LocalFlag = False,
    output: OutOption = None,
    yes: YesOption = False,
) -> None:
    """Destroy a spec's stacks; with --local, stop the emulator once it holds no other stack."""
    loaded = _load(spec)
    from inf3kit import deploy as dep

    outdir = _assembly_dir(output, loaded)
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
        _error("destroy failed", exc)
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


def _error(what: str, detail: object) -> None:
    """Print an error without reading its text as rich markup: messages from specs, files and
    AWS may hold brackets, and rich would drop them or fail on a stray `[/]`."""
    err.print(Text.assemble((what, "bold red"), f": {detail}"), highlight=False)


def _run_cdk_on_aws(args: list[str], spec: Path, output: Path) -> None:
    """A thin wrapper: the CDK CLI with the user's own credentials and configuration."""
    from inf3kit.deploy import CdkCliError, cdk_cli

    try:
        cdk_cli.run(args, spec=spec, env={}, outdir=output, keep_aws_env=True, interactive=True)
    except CdkCliError as exc:
        _error(f"cdk {args[0]} failed", exc)
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


@app.command()
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

    loaded = _load(spec)
    output = _assembly_dir(output, loaded)
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
        _error("demo failed", exc)
        raise typer.Exit(1) from None
    finally:
        # An emulator that ran before the demo holds the user's deployments: it keeps running.
        if aws is not None and started:
            dep.stop(aws)
        console.print("stopped everything the demo started")


local_app = typer.Typer(help="The local AWS emulator used by `deploy --local`.")
app.add_typer(local_app, name="local")


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


def main() -> None:
    app()


# --- runtime commands ---
# `inf3kit serve` is also what SageMaker runs: it starts the container with the argument
# `serve`, so an image with ENTRYPOINT ["inf3kit"] needs nothing else (bundle: /opt/ml/model).


@app.command(name="compile")
def compile_model(
    factory: Annotated[str, typer.Argument(help="module:function returning a torch.nn.Module")],
    inputs: Annotated[
        list[str],
        typer.Option("--input", "-i", help="NAME:DTYPE:SHAPE without batch dim, e.g. x:FP32:32"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to create/update")],
    target: Annotated[str, typer.Option(help="cpu, inf2, inf3, trn1, trn2, trn3")] = "cpu",
    batch_size: Annotated[int, typer.Option(help="compiled (static) batch size")] = 1,
    name: Annotated[str | None, typer.Option(help="model name (default: module)")] = None,
    version: Annotated[str | None, typer.Option(help="model version (default: 1)")] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", help="output names (default OUTPUT__i)")
    ] = None,
    compiler_arg: Annotated[
        list[str] | None, typer.Option(help="extra argument for neuronx-cc (repeatable)")
    ] = None,
    cores_per_replica: Annotated[int, typer.Option(help="NeuronCores one replica uses")] = 1,
    dim: Annotated[
        list[str] | None,
        typer.Option(help="bucket values of a named input dimension, e.g. seq=64,128,512"),
    ] = None,
    pad: Annotated[
        list[str] | None,
        typer.Option(help="value padding an input's named dimensions, e.g. mask=0 (default 0)"),
    ] = None,
) -> None:
    """Trace a model into a bundle variant (torch.jit.trace for cpu, torch_neuronx for Neuron).

    Shape buckets: name a dimension in --input (ids:INT64:seq) and give its values with --dim;
    one variant is traced per value, and the server pads each request to the smallest.
    """
    from inf3kit.runtime.commands import compile_bundle

    try:
        manifest, variant = compile_bundle(
            factory,
            inputs,
            out,
            target=target,
            batch_size=batch_size,
            name=name,
            version=version,
            outputs=outputs or (),
            compiler_args=compiler_arg or (),
            cores_per_replica=cores_per_replica,
            dims=dim or (),
            pads=pad or (),
        )
    except ValueError as exc:
        _error("compile failed", exc)
        raise typer.Exit(1) from None
    console.print(
        f"[green]ok[/] {out}: {manifest.name} {manifest.version} + {variant.target} "
        f"batch {variant.batch_size} -> {variant.file} (sha256 {variant.sha256[:12]}...)",
        highlight=False,
    )


@app.command()
def bundle(
    directory: Annotated[Path, typer.Argument(help="bundle directory made by `inf3kit compile`")],
    output: Annotated[Path, typer.Option("-o", "--output", help="archive to write")] = Path(
        "model.tar.gz"
    ),
) -> None:
    """Verify a bundle and pack it into a reproducible model.tar.gz; print its manifest."""
    from inf3kit.runtime.commands import pack

    try:
        manifest = pack(directory, output)
    except ValueError as exc:
        _error("bundle refused", exc)
        raise typer.Exit(1) from None
    table = Table(title=f"{manifest.name} {manifest.version} -> {output}")
    for column in ("kind", "name / target", "datatype / file", "shape / batch", "sha256"):
        table.add_column(column)
    for kind, specs in (("input", manifest.inputs), ("output", manifest.outputs)):
        for s in specs:
            table.add_row(kind, s.name, s.datatype, str(list(s.shape)), "")
    for v in manifest.variants:
        table.add_row("variant", v.target, v.file, str(v.batch_size), v.sha256[:16] + "...")
    console.print(table)


@app.command()
def serve(
    model_dir: Annotated[
        Path | None,
        typer.Argument(help="bundle dir or .tar.gz (default: INF3KIT_MODEL_DIR or /opt/ml/model)"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="bind address (INF3KIT_HOST)")] = None,
    port: Annotated[
        int | None, typer.Option(help="port (SAGEMAKER_BIND_TO_PORT, INF3KIT_PORT)")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="force a variant target (INF3KIT_TARGET)")
    ] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="INF3KIT_MAX_BATCH_SIZE")] = None,
    max_delay_ms: Annotated[float | None, typer.Option(help="INF3KIT_MAX_DELAY_MS")] = None,
    workers: Annotated[int | None, typer.Option(help="CPU workers (INF3KIT_WORKERS)")] = None,
    queue_size: Annotated[int | None, typer.Option(help="INF3KIT_QUEUE_SIZE")] = None,
    grace_seconds: Annotated[float | None, typer.Option(help="INF3KIT_GRACE_SECONDS")] = None,
) -> None:
    """Serve a bundle: SageMaker (/ping, /invocations) and Open Inference Protocol v2."""
    from inf3kit.runtime.commands import serve as run_server

    try:
        code = run_server(
            model_dir=str(model_dir) if model_dir is not None else None,
            host=host,
            port=port,
            target=target,
            max_batch_size=max_batch_size,
            max_delay_ms=max_delay_ms,
            workers=workers,
            queue_size=queue_size,
            grace_seconds=grace_seconds,
        )
    except ValueError as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


# --- fleet commands ---


@app.command()
def bootstrap(
    bundle_uri: Annotated[
        str | None,
        typer.Option("--bundle", help="s3://BUCKET/KEY.tar.gz (default: $INF3KIT_BUNDLE_URI)"),
    ] = None,
    port: Annotated[int, typer.Option(help="the runtime port")] = 8080,
    model_dir: Annotated[Path, typer.Option(help="where the bundle is unpacked")] = Path(
        "/opt/inf3kit/model"
    ),
    env_file: Annotated[Path, typer.Option(help="environment file the unit reads")] = Path(
        "/etc/inf3kit/serve.env"
    ),
    unit_dir: Annotated[Path, typer.Option(help="systemd unit directory")] = Path(
        "/etc/systemd/system"
    ),
    env: Annotated[
        list[str] | None, typer.Option("--env", help="NAME=value for the server (repeatable)")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of the bucket and stack")] = None,
    stack: Annotated[str | None, typer.Option(help="CloudFormation stack to signal")] = None,
    resource: Annotated[
        str | None, typer.Option(help="logical id of the Auto Scaling group")
    ] = None,
    ready_timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 1200,
    asg: Annotated[
        str | None,
        typer.Option(
            "--asg",
            help="Auto Scaling group the NeuronCore metric is published for "
            "(default: the instance's aws:autoscaling:groupName tag)",
        ),
    ] = None,
    lifecycle_hook: Annotated[
        str | None,
        typer.Option(help="the group's launch lifecycle hook to complete (warm pools)"),
    ] = None,
) -> None:
    """Fetch and verify the bundle, start `inf3kit serve` under systemd, signal CloudFormation."""
    from inf3kit.runtime.bootstrap import (
        BootstrapConfig,
        BootstrapError,
        bundle_from_env,
        parse_env,
    )
    from inf3kit.runtime.bootstrap import bootstrap as run_bootstrap

    try:
        config = BootstrapConfig(
            bundle=bundle_from_env(bundle_uri),
            port=port,
            model_dir=model_dir,
            env_file=env_file,
            unit_dir=unit_dir,
            env=parse_env(env or []),
            region=region,
            stack=stack,
            resource=resource,
            ready_timeout=ready_timeout,
            asg_name=asg,
            lifecycle_hook=lifecycle_hook,
        )
        result = run_bootstrap(config)
    except BootstrapError as exc:
        _error("bootstrap failed", exc)
        raise typer.Exit(1) from None
    state = "serving" if result.started else "prepared (warm pool), not started"
    console.print(f"[green]ok[/] {result.variant} in {result.model_dir}: {state}")
    if result.metrics_group:
        console.print(f"NeuronCore utilisation published for group {result.metrics_group}")


@app.command("neuron-metrics")
def neuron_metrics(
    asg: Annotated[
        str | None,
        typer.Option("--asg", envvar="INF3KIT_ASG_NAME", help="Auto Scaling group name"),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of CloudWatch")] = None,
    period: Annotated[int, typer.Option(min=1, help="seconds per published datapoint")] = 60,
    high_resolution: Annotated[
        bool, typer.Option(help="store at 1 s resolution, for periods under a minute")
    ] = False,
    monitor_cmd: Annotated[
        str, typer.Option(help="the command printing neuron-monitor reports")
    ] = "neuron-monitor",
    stdin: Annotated[bool, typer.Option("--stdin", help="read the reports from stdin")] = False,
) -> None:
    """Publish NeuronCore utilisation from neuron-monitor to CloudWatch for fleet scaling.

    One datapoint per period (namespace Inf3kit/Neuron, metric NeuronCoreUtilization, dimension
    AutoScalingGroupName). Runs until neuron-monitor exits; systemd restarts it.
    """
    import logging

    from botocore.exceptions import NoRegionError

    from inf3kit.runtime.neuron_metrics import (
        MonitorError,
        Publisher,
        cloudwatch_client,
        forward,
        run_monitor,
    )

    if not asg:
        err.print(
            "[red]no Auto Scaling group[/]. Fix: pass --asg NAME or set INF3KIT_ASG_NAME "
            "(`inf3kit bootstrap` sets it from the instance's aws:autoscaling:groupName tag)",
            highlight=False,
        )
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        publish = Publisher(cloudwatch_client(region), asg, high_resolution=high_resolution)
    except NoRegionError:
        err.print("[red]no AWS region[/]. Fix: pass --region or set AWS_REGION", highlight=False)
        raise typer.Exit(2) from None
    status = 0
    try:
        if stdin:
            stats = forward(sys.stdin, publish, period=period)
        else:
            stats, status = run_monitor(monitor_cmd, publish, period=period)
    except MonitorError as exc:
        _error("neuron-metrics failed", exc)
        raise typer.Exit(1) from None
    err.print(
        f"{stats.reports} report(s), {stats.malformed} malformed, {stats.published} period(s) "
        f"published, {stats.dropped} dropped" + ("" if stdin else f"; the monitor exited {status}"),
        highlight=False,
    )
    # The monitor should never stop: make systemd see a failure whatever its status.
    raise typer.Exit(0 if stdin else 1)


# --- endpoint commands ---


@app.command()
def invoke(
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="endpoint name (the stack output EndpointName)")
    ],
    input_file: Annotated[
        Path, typer.Option("--input", help="file whose bytes are the request body")
    ],
    content_type: Annotated[
        str, typer.Option("--content-type", help="Content-Type of the body")
    ] = "application/json",
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: your AWS config)")
    ] = None,
) -> None:
    """Send one request to a deployed SageMaker endpoint and print its answer (a smoke test).

    The caller needs sagemaker:InvokeEndpoint on the endpoint, which NeuronEndpoint.grant_invoke
    gives. The answer body goes to stdout; status lines go to stderr.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    try:
        body = input_file.read_bytes()
    except OSError as exc:
        _error(
            f"cannot read --input {input_file}",
            f"{exc.strerror}. Fix: pass the path of a request body file, e.g. a JSON request",
        )
        raise typer.Exit(2) from None
    try:
        client = boto3.client("sagemaker-runtime", region_name=region)
        response = client.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type
        )
        answer = response["Body"].read()
    except NoRegionError:
        err.print("[red]no AWS region[/]. Fix: pass --region or set AWS_REGION", highlight=False)
        raise typer.Exit(2) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", str(exc))
        where = client.meta.region_name
        if code == "ValidationError" and "not found" in message:
            _error(
                f"endpoint {endpoint!r} not found in {where}",
                f"{message} Fix: use the stack's EndpointName output and the stack's region "
                "(--region)",
            )
        elif code == "ModelError":
            _error("the model answered with an error", message)
        else:
            _error(f"invoke failed ({code})", message)
        raise typer.Exit(1) from None
    except BotoCoreError as exc:
        _error("invoke failed", exc)
        raise typer.Exit(1) from None
    err.print(
        f"[green]ok[/] {endpoint} variant {response.get('InvokedProductionVariant', '?')}: "
        f"{len(answer)} bytes, {response.get('ContentType', '?')}",
        highlight=False,
    )
    sys.stdout.buffer.write(answer)
    if not answer.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
