"""Run the `integ_*.py` apps: compare their snapshots, refresh them, or deploy and assert them.

    python tests/integ/runner.py compare          # no credentials: what `make test` checks
    python tests/integ/runner.py update           # refresh snapshots after an intended change
    python tests/integ/runner.py deploy [APP ...]  # `make integ`: a real account, then update

This does what `integ-runner` (npm `@aws-cdk/integ-runner`) does, in its snapshot layout
(`<app>.snapshot/` beside each app, with `integ.json`), because the newest integ-runner on npm
(2.197.10) reads cloud assembly schema 53 at most and the aws-cdk-lib we use writes schema 55:
it refuses every app with "Cloud assembly schema version mismatch". When an integ-runner that
reads schema 55 is released, `integ-runner --language python --directory tests/integ` works on
the same apps and snapshots. See docs/deploying.md.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
SALT = re.compile(r'"salt": "\d+"')
# Image Builder versions are a hash of the component or recipe content (compared above), and
# that content names the runtime wheel asset, so they change with every source change too.
CONTENT_VERSION = re.compile(r'"Version": "1\.0\.\d+"')
KEPT = ("manifest.json", "integ.json", "*.template.json", "*.assets.json")
"""What a committed snapshot holds: the assembly without the asset contents and the tree."""


class IntegError(RuntimeError):
    """An app failed to synthesize, a snapshot differs, or a deploy or assertion failed."""


def apps() -> list[Path]:
    return sorted(HERE.glob("integ_*.py"))


def snapshot_of(app: Path) -> Path:
    return app.with_name(f"{app.name}.snapshot")


def synth(app: Path, outdir: Path) -> Path:
    """Synthesize `app` into `outdir` as `cdk synth` would."""
    proc = subprocess.run(
        [sys.executable, app.name],
        cwd=app.parent,
        env={**os.environ, "CDK_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise IntegError(f"{app.name} failed to synthesize:\n{proc.stderr[-3000:]}")
    return outdir


def _normalized(path: Path) -> list[str]:
    """A template as sorted JSON lines, with what changes on every synthesis masked: asset
    hashes (a rebuilt bundle, image or runtime wheel; integ-runner ignores them by default),
    versions derived from content, and the salt of each assertion (the synthesis time, so that
    every deploy runs the assertions again)."""
    text = json.dumps(json.loads(path.read_text()), indent=1, sort_keys=True)
    text = SALT.sub('"salt": "<synthesis time>"', ASSET_HASH.sub("<asset-hash>", text))
    text = CONTENT_VERSION.sub('"Version": "<content version>"', text)
    return text.splitlines()


def differences(fresh: Path, snapshot: Path, context: int = 3, limit: int = 60) -> list[str]:
    """Where the templates (and the test cases) of `fresh` differ from `snapshot`."""
    if not snapshot.is_dir():
        return [f"{snapshot.name} is missing"]
    found = []
    names = {p.name for d in (fresh, snapshot) for p in d.glob("*.template.json")} | {"integ.json"}
    for name in sorted(names):
        new, old = fresh / name, snapshot / name
        if not old.exists() or not new.exists():
            found.append(f"{name}: {'not in the snapshot' if new.exists() else 'no longer made'}")
            continue
        diff = list(
            difflib.unified_diff(
                _normalized(old), _normalized(new), "snapshot", "now", n=context, lineterm=""
            )
        )
        if diff:
            shown = diff[:limit] + (
                [f"... {len(diff) - limit} more lines"] if len(diff) > limit else []
            )
            found.append(f"{name} changed:\n" + "\n".join(shown))
    return found


def store(fresh: Path, snapshot: Path) -> None:
    """Replace `snapshot` with the kept files of `fresh`."""
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir()
    for pattern in KEPT:
        for path in fresh.glob(pattern):
            shutil.copy(path, snapshot / path.name)


def compare(app: Path) -> None:
    """Raise with the differences when `app` no longer synthesizes to its snapshot."""
    with tempfile.TemporaryDirectory() as tmp:
        problems = differences(synth(app, Path(tmp)), snapshot_of(app))
    if problems:
        raise IntegError(
            f"{app.name}: the synthesized app differs from {snapshot_of(app).name}:\n"
            + "\n".join(problems)
            + "\nFix: if the change is intended, refresh the snapshots with `make integ-snapshots` "
            "and commit them (and run `make integ` in an account to prove it); else fix the change"
        )


def update(app: Path) -> bool:
    """Store a new snapshot only where it differs, so unchanged apps keep their files."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = synth(app, Path(tmp))
        changed = bool(differences(fresh, snapshot_of(app)))
        if changed:
            store(fresh, snapshot_of(app))
    return changed


def failed_assertions(outputs: dict, cases: dict) -> list[str]:
    """The failed `AssertionResults*` outputs of the assertion stacks (as integ-runner reads)."""
    failed = []
    for case in cases.values():
        for key, raw in outputs.get(case["assertionStackName"], {}).items():
            result = json.loads(raw) if key.startswith("AssertionResults") else {}
            if result.get("status") == "fail":
                failed.append(f"{key}: {result.get('message', '')}")
    return failed


def deploy(app: Path) -> None:
    """Deploy the app with the caller's credentials, check its assertions, always destroy, and
    refresh the snapshot when every assertion passed (integ-runner --update-on-failed)."""
    from inf3kit.deploy import cdk_cli

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        synth(app, out / "assembly")
        cases = json.loads((out / "assembly" / "integ.json").read_text())["testCases"]
        outputs = out / "outputs.json"

        def cdk(*args: str) -> None:
            command = [str(cdk_cli.find_cli()), *args, "--app", str(out / "assembly"), "--ci"]
            env = cdk_cli.cli_env({}, keep_aws_env=True)
            if subprocess.run(command, env=env, check=False).returncode != 0:
                raise IntegError(f"{app.name}: `cdk {args[0]}` failed; its output is above")

        try:
            cdk("deploy", "--all", "--require-approval", "never", "--outputs-file", str(outputs))
            failed = failed_assertions(json.loads(outputs.read_text()), cases)
        finally:
            cdk("destroy", "--all", "--force")
        if failed:
            raise IntegError(f"{app.name}: assertions failed:\n" + "\n".join(failed))
        store(out / "assembly", snapshot_of(app))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=("compare", "update", "deploy"))
    parser.add_argument("apps", nargs="*", help="app file names (default: every integ_*.py)")
    args = parser.parse_args(argv)
    chosen = [HERE / name for name in args.apps] or apps()
    if args.action == "deploy" and not os.environ.get("INF3KIT_INTEG_BUNDLE"):
        print(
            "INF3KIT_INTEG_BUNDLE is unset. Fix: point it at a bundle archive with an inf2 "
            "variant (docs/deploying.md): the runtime never serves a CPU variant on inf2",
            file=sys.stderr,
        )
        return 2
    failures = []
    for app in chosen:
        try:
            changed = {"compare": compare, "update": update, "deploy": deploy}[args.action](app)
            print(f"{args.action} {app.name}: {'snapshot stored' if changed else 'ok'}")
        except IntegError as exc:
            failures.append(str(exc))
            print(exc, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
