"""Model commands: compile, bundle, serve, profile, plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from inf3kit.spec import SpecError

if TYPE_CHECKING:
    from inf3kit.runtime.manifest import Manifest

from inf3kit.cli.shared import (
    SpecArg,
    app,
    console,
    err,
    load_or_exit,
    print_error,
    print_spec_error,
)

# `inf3kit serve` is also what SageMaker runs: it starts the container with the argument
# `serve`, so an image with ENTRYPOINT ["inf3kit"] needs nothing else (bundle: /opt/ml/model).

PANEL = "Build and serve models"


@app.command(name="compile", rich_help_panel=PANEL)
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
        print_error("compile failed", exc)
        raise typer.Exit(1) from None
    console.print(
        f"[green]ok[/] {out}: {manifest.name} {manifest.version} + {variant.target} "
        f"batch {variant.batch_size} -> {variant.file} (sha256 {variant.sha256[:12]}...)",
        highlight=False,
    )


@app.command(rich_help_panel=PANEL)
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
        print_error("bundle refused", exc)
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
    _print_servers(manifest)


def _print_servers(manifest: Manifest) -> None:
    """Which serving images and fleet Neuron SDKs can load each Neuron variant (the same rule
    synthesis applies)."""
    from inf3kit.catalog import CompiledVariant, load_compatibility

    compat = load_compatibility()
    for v in manifest.variants:
        if not v.is_neuron:
            continue
        variant = CompiledVariant.of(v.target, v.compiler.version, v.batch_size, v.file)
        compiled = compat.compiled_release(variant.compiler)
        if compiled is None:
            console.print(
                f"{variant.label}: compiler {v.compiler.version!r} is in no Neuron release of "
                "the compatibility matrix, so synthesis refuses it; recompile with a listed "
                "release, or add this one under compatibility.neuron_releases",
                markup=False,
                soft_wrap=True,
            )
            continue
        images, releases = compat.servers(variant)
        fleets = f"neuron_sdk {releases[0]} or later" if releases else "none listed"
        console.print(
            f"{variant.label}: compiled with Neuron {compiled}; endpoint images: "
            f"{', '.join(images) or 'none listed'}; fleets: {fleets}",
            markup=False,
            soft_wrap=True,
        )


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
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
        print_error("profile failed", exc)
        raise typer.Exit(1) from None


@app.command(rich_help_panel=PANEL)
def plan(
    spec: SpecArg,
    rps: Annotated[
        float | None,
        typer.Option(help="target load, requests (one row each) per second; runtime specs"),
    ] = None,
    p99_ms: Annotated[
        float | None, typer.Option(help="p99 latency target in milliseconds; runtime specs")
    ] = None,
    profile: Annotated[
        list[Path] | None,
        typer.Option(help="profile JSON (repeatable; default: stored ones; LLM: throughput file)"),
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
    """Instances, monthly cost and $ per million inferences per instance type for a load; for an
    LLM spec, $ per million output tokens per instance type."""
    from inf3kit.plan.commands import run_llm_plan, run_plan

    loaded = load_or_exit(spec)
    try:
        if loaded.spec.model.is_llm:
            unused = [
                flag
                for flag, value in (("--rps", rps), ("--p99-ms", p99_ms), ("--html", html))
                if value is not None
            ] + (["--apply"] if apply else [])
            if unused:
                raise ValueError(
                    f"{', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} only to "
                    "runtime specs; an LLM plan is a cost per million output tokens per "
                    "instance type. Fix: drop it (LLM plans take --profile, --region, --json)"
                )
            run_llm_plan(console, loaded, profiles=profile or [], region=region, as_json=as_json)
            return
        if rps is None or p99_ms is None:
            raise ValueError(
                "--rps and --p99-ms are required for a runtime spec. Fix: give the target load "
                "and latency, e.g. --rps 200 --p99-ms 50"
            )
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
        print_spec_error(exc, "--apply refused, the spec is unchanged: ")
        raise typer.Exit(1) from None
    except (ValueError, OSError) as exc:
        print_error("plan failed", exc)
        raise typer.Exit(1) from None
