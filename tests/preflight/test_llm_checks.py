"""Preflight on LLM specs: alternatives the model fits, and the engine's image."""

from __future__ import annotations

from pathlib import Path

import boto3

from inf3kit.preflight import images, offerings
from inf3kit.spec import load_spec
from tests.preflight.conftest import context

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_an_unoffered_type_is_not_replaced_by_one_the_model_does_not_fit(
    session: boto3.Session,
) -> None:
    """moto's us-east-1 offers no trn2.48xlarge; inf2.48xlarge, the same size of the reference
    family, cannot hold 70B in bfloat16, so it is not offered as the fix."""
    ctx = context(session, load_spec(EXAMPLES / "llm-fleet.yaml"))
    offerings.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == "EC2 does not offer trn2.48xlarge in us-east-1"
    assert "inf2.48xlarge" not in problem.fix
    assert problem.fix.startswith("or deploy to a region that offers trn2.48xlarge")


def test_an_llm_endpoint_names_the_engine_image_not_the_runtime_image(
    session: boto3.Session,
) -> None:
    ctx = context(session, load_spec(EXAMPLES / "llm-endpoint.yaml"))
    images.check(ctx)
    [note] = ctx.report.unchecked
    name, image = ctx.loaded.llm_engine("ml.inf2.xlarge")
    assert note.text.startswith(f"{image.repository}:{image.tag} (the {name} image the ")
    assert ctx.report.checked == []
