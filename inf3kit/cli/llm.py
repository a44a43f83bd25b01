"""`inf3kit llm ...`: commands for LLM services served with vLLM (issue 13).

`metrics` runs on LLM fleet instances (the boot starts it as a systemd unit); `compile` runs on
a Neuron host to pre-compile a model for a fleet or an endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inf3kit.cli.shared import app, console, err, print_error

llm_app = typer.Typer(
    help="LLM services with vLLM: queue metrics on fleet hosts, pre-compiled artefacts.",
    no_args_is_help=True,
)
app.add_typer(llm_app, name="llm", rich_help_panel="Fleet host agents")


@llm_app.command("metrics")
def metrics(
    ports: Annotated[str, typer.Option(help="the vLLM servers' ports, e.g. 8000,8001")],
    asg: Annotated[
        str | None,
        typer.Option(
            "--asg",
            envvar="INF3KIT_ASG_NAME",
            help="Auto Scaling group name (default: the instance's aws:autoscaling:groupName "
            "tag, through instance metadata)",
        ),
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of CloudWatch")] = None,
    period: Annotated[int, typer.Option(min=1, help="seconds per published datapoint")] = 60,
    interval: Annotated[int, typer.Option(min=1, help="seconds between scrapes")] = 10,
    periods: Annotated[
        int | None, typer.Option(min=1, help="stop after this many periods (default: never)")
    ] = None,
) -> None:
    """Publish the vLLM servers' waiting requests to CloudWatch for the fleet's scaling.

    One datapoint per period: namespace Inf3kit/LLM, metric RequestsWaiting (the sum of the
    servers' vllm:num_requests_waiting), dimension AutoScalingGroupName.
    """
    import logging

    from botocore.exceptions import NoRegionError

    from inf3kit.runtime.bootstrap import imds_get
    from inf3kit.runtime.llm_metrics import METRIC_NAME, NAMESPACE, parse_ports, run
    from inf3kit.runtime.neuron_metrics import ASG_TAG, Publisher, cloudwatch_client

    try:
        server_ports = parse_ports(ports)
    except ValueError as exc:
        print_error("llm metrics", exc)
        raise typer.Exit(2) from None
    group = asg or imds_get(f"meta-data/tags/instance/{ASG_TAG}")
    if not group:
        err.print(
            "[red]no Auto Scaling group[/]. Fix: pass --asg NAME or set INF3KIT_ASG_NAME (on a "
            "fleet instance the aws:autoscaling:groupName tag is read when instance metadata "
            "tags are on)",
            highlight=False,
        )
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        publish = Publisher(
            cloudwatch_client(region),
            group,
            namespace=NAMESPACE,
            metric_name=METRIC_NAME,
            unit="Count",
        )
    except NoRegionError:
        err.print(
            "[red]no AWS region[/]. Fix: pass --region or set AWS_DEFAULT_REGION", highlight=False
        )
        raise typer.Exit(2) from None
    stats = run(server_ports, publish, period=period, interval=interval, periods=periods)
    console.print(
        f"{stats.scrapes} scrape(s), {stats.unknown} with no server answering, "
        f"{stats.published} period(s) published, {stats.dropped} dropped",
        highlight=False,
    )


@llm_app.command("compile")
def compile_llm(
    model: Annotated[
        str, typer.Option(help="a local model folder, or a Hugging Face id with --revision")
    ],
    tensor_parallel: Annotated[int, typer.Option(help="NeuronCores per server, as served")],
    max_model_len: Annotated[int, typer.Option(help="as served (llm.max_model_len)")],
    max_num_seqs: Annotated[int, typer.Option(help="as served (llm.max_num_seqs)")],
    output: Annotated[str, typer.Option(help="s3://BUCKET/PREFIX/ for the artefacts")],
    revision: Annotated[str | None, typer.Option(help="the Hugging Face commit")] = None,
    dtype: Annotated[str, typer.Option(help="bfloat16 or float16, as served")] = "bfloat16",
    vllm_environment: Annotated[
        str, typer.Option(help="the vLLM virtual environment (a path or a glob)")
    ] = "/opt/aws_neuronx_venv_pytorch_inference_vllm_*",
    work_dir: Annotated[
        Path, typer.Option(help="where the artefacts are built before the upload")
    ] = Path("/opt/inf3kit/llm/compile"),
    region: Annotated[str | None, typer.Option(help="AWS region of the bucket")] = None,
) -> None:
    """Pre-compile a model for vLLM on Neuron (on a Neuron host) and upload the artefacts.

    Give the upload's prefix as `model.weights.compiled` (or `LlmWeights.compiled_prefix`):
    fleets and endpoints then load the compiled model instead of compiling at startup.
    """
    import boto3

    from inf3kit.runtime.llm_compile import CompileError, CompileRequest, compile_and_upload

    request = CompileRequest(
        model=model,
        tensor_parallel=tensor_parallel,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
        output=output,
        dtype=dtype,
        revision=revision,
    )
    try:
        count = compile_and_upload(
            request,
            work_dir=work_dir,
            s3_client=boto3.client("s3", region_name=region),
            vllm_environment=vllm_environment,
        )
    except CompileError as exc:
        print_error("llm compile failed", exc)
        raise typer.Exit(1) from None
    console.print(f"[green]ok[/] {count} file(s) uploaded to {output}", highlight=False)


@llm_app.command("check-compiled")
def check_compiled(
    artefacts: Annotated[Path, typer.Argument(help="the downloaded artefacts folder")],
    tensor_parallel: Annotated[int, typer.Option()],
    max_model_len: Annotated[int, typer.Option()],
    max_num_seqs: Annotated[int, typer.Option()],
    dtype: Annotated[str, typer.Option()] = "bfloat16",
) -> None:
    """Refuse compiled artefacts made for other settings than the servers use (the fleet's
    boot runs this before it starts a server)."""
    from inf3kit.runtime.llm_compile import engine_settings, manifest_problems

    problems = manifest_problems(
        artefacts, engine_settings(tensor_parallel, max_model_len, max_num_seqs, dtype)
    )
    if problems:
        print_error("compiled artefacts do not match", "; ".join(problems))
        raise typer.Exit(1)
    console.print(f"[green]ok[/] {artefacts} matches", highlight=False)
