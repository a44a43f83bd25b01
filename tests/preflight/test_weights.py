"""An LLM's weights: the S3 model directory, the pre-compiled prefix and the Hub token secret."""

from __future__ import annotations

import boto3

from inf3kit.preflight import bundle, weights
from tests.preflight.conftest import context

REVISION = "0e9e39f249a16976918f6564b8830bc894c89659"
LLM = """\
name: chat
model:
  engine: vllm
  weights: {WEIGHTS}
llm:
  max_model_len: 1024
  max_num_seqs: 1
  architecture: {hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32,
    num_key_value_heads: 8, intermediate_size: 8192, vocab_size: 128256}
fleet: {instance_types: [inf2.xlarge]}
"""


def spec(weights_yaml: str) -> str:
    return LLM.replace("{WEIGHTS}", weights_yaml)


def test_an_s3_model_directory_with_config_and_safetensors_passes(
    session: boto3.Session,
) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="models")
    for name in ("config.json", "tokenizer.json", "model-00001-of-00002.safetensors"):
        s3.put_object(Bucket="models", Key=f"llama/{name}", Body=b"{}")
    ctx = context(session, spec("{s3: s3://models/llama/}"))
    weights.check(ctx)
    bundle.check(ctx)  # no bundle with engine vllm: nothing to verify, nothing raised
    assert ctx.report.problems == []
    assert [n.text for n in ctx.report.checked] == [
        "s3://models/llama/: config.json and 1 weight file(s)"
    ]


def test_fails_when_the_s3_prefix_has_no_config_or_weights(session: boto3.Session) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="llama/README.md", Body=b"")
    s3.put_object(Bucket="models", Key="llama/nested/config.json", Body=b"{}")
    ctx = context(session, spec("{s3: s3://models/llama/}"))
    weights.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == (
        "model.weights.s3 s3://models/llama/ has no config.json and no weights (1 object under it)"
    )
    assert problem.fix.startswith("upload the model directory: `aws s3 sync ./MODEL_DIR")


def test_fails_when_the_bucket_is_missing(session: boto3.Session) -> None:
    ctx = context(session, spec("{s3: s3://models/llama/}"))
    weights.check(ctx)
    [problem] = ctx.report.problems
    assert problem.message == "s3://models/llama/: bucket models does not exist"


def test_a_hub_model_is_left_to_the_instances_but_its_secret_and_compiled_prefix_are_checked(
    session: boto3.Session,
) -> None:
    session.client("s3").create_bucket(Bucket="models")
    text = spec(
        f"{{huggingface: meta-llama/Llama-3.2-1B, revision: {REVISION}, token_secret: hf-token, "
        "compiled: s3://models/compiled/}"
    )
    ctx = context(session, text)
    weights.check(ctx)
    assert [p.message for p in ctx.report.problems] == [
        "model.weights.token_secret hf-token does not exist",
        "model.weights.compiled s3://models/compiled/ is empty",
    ]
    assert [n.text for n in ctx.report.unchecked] == [
        f"meta-llama/Llama-3.2-1B@{REVISION} is fetched from the Hugging Face Hub by the "
        "instances; preflight does not call the Hub"
    ]
    session.client("secretsmanager").create_secret(Name="hf-token", SecretString="hf_x")
    session.client("s3").put_object(Bucket="models", Key="compiled/tp2/model.pt", Body=b"")
    again = context(session, text)
    weights.check(again)
    assert again.report.problems == []
    assert [n.text for n in again.report.checked] == [
        "token secret hf-token exists",
        "s3://models/compiled/: pre-compiled artefacts present",
    ]
