"""Host agent commands, run on fleet instances: bootstrap, neuron-metrics."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from inf3kit.cli.shared import (
    app,
    console,
    err,
    print_error,
)

PANEL = "Fleet host agents"


@app.command(rich_help_panel=PANEL)
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
        print_error("bootstrap failed", exc)
        raise typer.Exit(1) from None
    state = "serving" if result.started else "prepared (warm pool), not started"
    console.print(f"[green]ok[/] {result.variant} in {result.model_dir}: {state}")
    if result.metrics_group:
        console.print(f"NeuronCore utilisation published for group {result.metrics_group}")


@app.command("neuron-metrics", rich_help_panel=PANEL)
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
        err.print(
            "[red]no AWS region[/]. Fix: pass --region or set AWS_DEFAULT_REGION", highlight=False
        )
        raise typer.Exit(2) from None
    status = 0
    try:
        if stdin:
            stats = forward(sys.stdin, publish, period=period)
        else:
            stats, status = run_monitor(monitor_cmd, publish, period=period)
    except MonitorError as exc:
        print_error("neuron-metrics failed", exc)
        raise typer.Exit(1) from None
    err.print(
        f"{stats.reports} report(s), {stats.malformed} malformed, {stats.published} period(s) "
        f"published, {stats.dropped} dropped" + ("" if stdin else f"; the monitor exited {status}"),
        highlight=False,
    )
    # The monitor should never stop: make systemd see a failure whatever its status.
    raise typer.Exit(0 if stdin else 1)
