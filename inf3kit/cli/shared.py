"""What every command shares: the app, the consoles, spec loading and error printing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from inf3kit.spec import LoadedSpec, SpecError, load_spec

if TYPE_CHECKING:
    pass


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


def assembly_dir(output: Path | None, loaded: LoadedSpec) -> Path:
    """Each spec gets its own assembly folder, so what one spec synthesized (templates, Docker
    assets) is never read, gated or deployed with another."""
    # Absolute: the CDK's Node.js process resolves relative paths against its own working
    # directory, which is not the caller's once the caller changed directory (tests, notebooks).
    return (output or Path("cdk.out") / loaded.spec.name).absolute()


def load_or_exit(spec: Path) -> LoadedSpec:
    try:
        return load_spec(spec)
    except SpecError as exc:
        print_spec_error(exc)
        raise typer.Exit(1) from None


def print_spec_error(exc: SpecError, what: str = "") -> None:
    print_error(exc.source, f"{what}{len(exc.problems)} problem(s)")
    for problem in exc.problems:
        err.print(Text.assemble(("  - ", "red"), str(problem)), highlight=False)


LocalFlag = Annotated[
    bool, typer.Option("--local", help="use the local AWS emulator (moto), not your AWS account")
]
PortOption = Annotated[int | None, typer.Option(help="emulator port (default: reuse or pick)")]
YesOption = Annotated[
    bool, typer.Option("--yes", help="on AWS: do not ask before IAM changes or deletions")
]


def print_error(what: str, detail: object) -> None:
    """Print an error without reading its text as rich markup: messages from specs, files and
    AWS may hold brackets, and rich would drop them or fail on a stray `[/]`."""
    err.print(Text.assemble((what, "bold red"), f": {detail}"), highlight=False)
