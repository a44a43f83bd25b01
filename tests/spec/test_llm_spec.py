"""LLM specs (`model.engine: vllm`): the weights, the `llm:` section and the fit check at validate.

The fit arithmetic itself is checked by hand in tests/llm/test_fit.py; here, that the spec
reaches it at the right paths and hands the stacks a resolved degree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inf3kit.llm import LlmSettings, LlmWeights, ModelArchitecture
from inf3kit.spec import SpecError, load_spec, parse_spec

REVISION = "0e9e39f249a16976918f6564b8830bc894c89659"
LLAMA_8B = (
    "{hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, "
    "num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256, "
    "max_position_embeddings: 131072}"
)
LLAMA_70B = LLAMA_8B.replace("4096, num_hidden_layers: 32", "8192, num_hidden_layers: 80")
LLAMA_70B = LLAMA_70B.replace("heads: 32", "heads: 64").replace("14336", "28672")
GOOD = f"""\
name: chat
model:
  engine: vllm
  weights: {{huggingface: meta-llama/Llama-3.1-8B-Instruct, revision: {REVISION}}}
llm:
  max_model_len: 4096
  max_num_seqs: 4
  architecture: {LLAMA_8B}
endpoint: {{instance_type: ml.inf2.xlarge}}
"""
FLEET = GOOD.replace(
    "endpoint: {instance_type: ml.inf2.xlarge}", "fleet: {instance_types: [inf2.xlarge]}"
)


def problems(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="t.yaml", base_dir=base_dir)
    return [str(p) for p in info.value.problems]


def test_an_llm_spec_hands_the_stacks_its_typed_service_with_auto_resolved() -> None:
    loaded = parse_spec(GOOD)
    assert loaded.spec.model.is_llm and loaded.spec.model.bundle is None
    architecture, weights, settings = loaded.llm_service("ml.inf2.xlarge")
    assert architecture == ModelArchitecture(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=14336,
        vocab_size=128256,
        max_position_embeddings=131072,
    )
    assert weights == LlmWeights(
        huggingface_id="meta-llama/Llama-3.1-8B-Instruct", revision=REVISION
    )
    # 8B in bfloat16 needs 17.0 GiB at this length (tests/llm/test_fit.py): one NeuronCore of
    # an inf2 holds 14.4 GiB after the reserve, two hold 28.8 GiB.
    assert settings == LlmSettings(tensor_parallel=2, max_model_len=4096, max_num_seqs=4)


def test_the_shape_can_come_from_a_config_json_next_to_the_spec(tmp_path: Path) -> None:
    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "config.json").write_text(json.dumps(config))
    spec = tmp_path / "chat.yaml"
    spec.write_text(GOOD.replace(f"architecture: {LLAMA_8B}", "config: models/config.json"))
    from_file = load_spec(spec).llm_service("ml.inf2.xlarge")
    assert from_file == parse_spec(GOOD).llm_service("ml.inf2.xlarge")


def test_an_explicit_degree_is_kept() -> None:
    text = GOOD.replace("max_num_seqs: 4", "max_num_seqs: 4\n  tensor_parallel: 2")
    assert parse_spec(text).llm_service("ml.inf2.xlarge").settings.tensor_parallel == 2


def test_a_runtime_spec_has_no_llm_service() -> None:
    loaded = parse_spec(
        "name: rt\nmodel: {bundle: s3://models/m.tar.gz}\nfleet: {instance_types: [inf2.xlarge]}\n"
    )
    with pytest.raises(ValueError, match=r"model\.engine is runtime"):
        loaded.llm_service("inf2.xlarge")


def test_fails_when_a_70b_model_is_put_on_inf2_xlarge_with_what_would_fit() -> None:
    text = GOOD.replace(LLAMA_8B, LLAMA_70B)
    assert problems(text) == [
        "endpoint.instance_type (line 9): the model (70.55B parameters: 131.4 GiB of bfloat16 "
        "weights + 5.0 GiB KV cache for 4096 tokens x 4 sequences = 136.4 GiB) does not fit "
        "ml.inf2.xlarge: even its largest valid group, 2 NeuronCores with 32.0 GiB, 28.8 GiB "
        "after the 10% reserve. What would fit: another family, ml.trn1.32xlarge "
        "(tensor_parallel 16)"
    ]
    # On EC2 the engines take int8 (SageMaker's LMI container does not, in inf3kit), and a
    # fleet's degree leaves at most 5 servers per instance: 16 of trn2's and trn3's 64 cores.
    on_ec2 = text.replace(
        "endpoint: {instance_type: ml.inf2.xlarge}", "fleet: {instance_types: [inf2.xlarge]}"
    )
    [problem] = problems(on_ec2)
    assert problem.endswith(
        "What would fit: another family, trn1.32xlarge (tensor_parallel 16) or trn2.48xlarge "
        "(tensor_parallel 16) or trn3.48xlarge (tensor_parallel 16); quantization int8 on "
        "inf2.48xlarge (tensor_parallel 8) (check the model's accuracy)"
    )


def test_fails_when_an_endpoint_asks_for_quantization_the_lmi_container_does_not_take() -> None:
    text = GOOD.replace("max_num_seqs: 4", "max_num_seqs: 4\n  quantization: int8")
    assert problems(text) == [
        "endpoint.instance_type (line 10): ml.inf2.xlarge: lmi-neuronx does not take "
        "quantization int8 in inf3kit (the LMI container's weight-quantization settings are "
        "not wired in LlmEndpoint yet). Fix: leave llm.quantization unset, or serve on EC2 "
        "(vllm-neuron, vllm-nxd-inference take it)"
    ]


def test_fails_at_each_fleet_type_the_model_does_not_fit() -> None:
    text = GOOD.replace(LLAMA_8B, LLAMA_70B).replace(
        "endpoint: {instance_type: ml.inf2.xlarge}",
        "fleet: {instance_types: [trn2.48xlarge, inf2.48xlarge]}",
    )
    [problem] = problems(text)
    assert problem.startswith("fleet.instance_types[1] (line 9): the model (70.55B parameters")
    assert "does not fit inf2.48xlarge: even its largest valid group, 8 NeuronCores" in problem


def test_fails_when_fleet_types_share_no_degree_that_fits() -> None:
    """A made-up 40B shape with 48 heads: inf2.24xlarge (12 cores) takes degrees 1, 2, 3, 4, 6
    and 12, trn1.32xlarge (32 cores) 1, 2, 4, 8 and 16. 80 GB of weights need more than 4 cores
    of 16 GiB (57.6 GiB after the reserve): 6 on the one, 8 on the other, none common."""
    shape = (
        "{hidden_size: 6144, num_hidden_layers: 8, num_attention_heads: 48, "
        "intermediate_size: 16384, vocab_size: 32000}\n  parameters: 40000000000"
    )
    text = GOOD.replace(LLAMA_8B, shape).replace("max_model_len: 4096", "max_model_len: 1024")
    text = text.replace(
        "endpoint: {instance_type: ml.inf2.xlarge}",
        "fleet: {instance_types: [inf2.24xlarge, trn1.32xlarge]}",
    )
    assert problems(text) == [
        "fleet.instance_types (line 10): no one tensor_parallel degree fits all of "
        "inf2.24xlarge, trn1.32xlarge with the same number of servers on each, at most 5 (the "
        "smallest degree that fits each: inf2.24xlarge: 6, trn1.32xlarge: 8; NeuronCores: "
        "inf2.24xlarge: 12, trn1.32xlarge: 32). Fix: list types with the same NeuronCore count"
    ]


def test_fails_when_a_fixed_degree_is_too_small_and_names_the_one_that_fits() -> None:
    text = GOOD.replace("max_num_seqs: 4", "max_num_seqs: 4\n  tensor_parallel: 1")
    [problem] = problems(text)
    assert problem.startswith("endpoint.instance_type (line 10): the model (8.03B parameters")
    assert problem.endswith(
        "does not fit ml.inf2.xlarge at tensor_parallel 1: 1 NeuronCore with 16.0 GiB, 14.4 GiB "
        "after the 10% reserve. Fix: tensor_parallel 2 (or `auto`)"
    )


def test_fails_when_the_degree_is_neither_auto_nor_a_core_count() -> None:
    for value in ("four", 0, 3.5, 200):
        text = GOOD.replace("max_num_seqs: 4", f"max_num_seqs: 4\n  tensor_parallel: {value}")
        assert problems(text)[0].startswith(
            f"llm.tensor_parallel (line 8): got {value!r}; allowed: `auto` or a whole number "
            "1..128 (NeuronCores per engine replica)"
        )


def test_fails_when_the_degree_does_not_divide_the_cores() -> None:
    text = GOOD.replace("max_num_seqs: 4", "max_num_seqs: 4\n  tensor_parallel: 4")
    assert problems(text) == [
        "endpoint.instance_type (line 10): tensor_parallel 4 is not valid for this model on "
        "ml.inf2.xlarge (2 NeuronCores, 32 attention heads, 8 KV heads): valid degrees are 1, "
        "2. Fix: use one of those, or `auto`"
    ]


def test_fails_when_bundle_and_weights_do_not_match_the_engine() -> None:
    assert problems(GOOD.replace("  engine: vllm\n", "")) == [
        "model (line 3): engine runtime needs `bundle`. Fix: add `bundle:` (a bundle from "
        "`inf3kit bundle`), or set `engine: vllm` with `weights:` to serve an LLM; `weights` is "
        "only read with engine vllm. Fix: set `engine: vllm` (and remove `bundle`), or remove "
        "`weights`"
    ]
    runtime = "  bundle: s3://models/m.tar.gz\n" + GOOD[GOOD.index("llm:") :]
    assert problems("name: chat\nmodel:\n" + runtime) == [
        "llm (line 5): only read with model.engine vllm. Fix: set `model.engine: vllm` with "
        "`model.weights`, or remove `llm:`"
    ]
    with_bundle = GOOD.replace("  weights:", "  bundle: s3://models/m.tar.gz\n  weights:")
    assert problems(with_bundle) == [
        "model (line 3): `bundle` is only read with engine runtime; vLLM loads `weights`. Fix: "
        "remove `bundle`, or set `engine: runtime`"
    ]


def test_fails_when_vllm_has_no_weights_or_no_llm_section() -> None:
    text = GOOD.replace(
        f"  weights: {{huggingface: meta-llama/Llama-3.1-8B-Instruct, revision: {REVISION}}}\n", ""
    )
    assert problems(text) == [
        "model (line 3): engine vllm needs `weights`. Fix: add `weights: {s3: "
        "s3://BUCKET/PREFIX/}` or `weights: {huggingface: ORG/NAME, revision: COMMIT}`"
    ]
    no_llm = GOOD[: GOOD.index("llm:")] + GOOD[GOOD.index("endpoint:") :]
    assert problems(no_llm) == [
        "llm (line 1): required with model.engine vllm. Fix: add `llm:` with max_model_len, "
        "max_num_seqs and the model's shape (`config:` or `architecture:`); see docs/llm.md",
    ]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            "{huggingface: meta-llama/Llama-3.1-8B-Instruct}",
            "revision is required with huggingface: an unpinned model changes under a running "
            "service. Fix: add `revision:` with the commit (40 hex digits) from the model "
            "page's 'Files and versions' history",
        ),
        (
            "{huggingface: meta-llama/Llama-3.1-8B-Instruct, revision: main}",
            "revision 'main' is not a commit id. Fix: use the full 40-digit lower-case hex "
            "commit, not a branch or tag name",
        ),
        (
            f"{{huggingface: Llama-3.1-8B, revision: {REVISION}}}",
            "huggingface 'Llama-3.1-8B' is not a Hugging Face model id. Fix: use ORG/NAME as on "
            "the model's page, e.g. meta-llama/Llama-3.1-8B-Instruct",
        ),
        (
            "{s3: s3://models/llama/model.tar.gz}",
            "s3 's3://models/llama/model.tar.gz': vLLM reads an uncompressed model directory, "
            "not an archive. Fix: use s3://BUCKET/PREFIX/ (a folder holding config.json and "
            "the *.safetensors files)",
        ),
        (
            f"{{s3: s3://models/llama/, revision: {REVISION}, token_secret: hf}}",
            "revision and token_secret apply only to `huggingface` weights. Fix: remove them",
        ),
        (
            f"{{s3: s3://models/llama/, huggingface: a/b, revision: {REVISION}}}",
            "both s3 and huggingface given. Fix: give one: `s3: s3://BUCKET/PREFIX/` (an "
            "uncompressed model directory) or `huggingface: ORG/NAME` with its `revision`",
        ),
        (
            "{s3: s3://models/llama/, compiled: s3://models/llama}",
            "compiled 's3://models/llama': it is not an S3 prefix ending in '/'. Fix: use "
            "s3://BUCKET/PREFIX/ (a folder holding config.json and the *.safetensors files)",
        ),
        (
            f"{{huggingface: a/b, revision: {REVISION}, token_secret: 'my token'}}",
            "token_secret 'my token' is neither a Secrets Manager secret name nor its ARN. Fix: "
            "give the secret's name (letters, digits, /_+=.@-) or ARN",
        ),
    ],
)
def test_fails_when_the_weights_are_not_one_pinned_location(weights: str, message: str) -> None:
    text = GOOD.replace(
        f"weights: {{huggingface: meta-llama/Llama-3.1-8B-Instruct, revision: {REVISION}}}",
        f"weights: {weights}",
    )
    assert problems(text) == [f"model.weights (line 4): {message}"]


def test_fails_when_the_shape_is_given_twice_or_not_at_all() -> None:
    both = GOOD.replace("  architecture:", "  config: config.json\n  architecture:")
    assert problems(both)[0].startswith(
        "llm (line 6): both `config` and `architecture` given; the fit check needs the model's "
        "shape once."
    )
    neither = GOOD.replace(f"  architecture: {LLAMA_8B}\n", "")
    assert problems(neither)[0].startswith("llm (line 6): neither `config` nor `architecture`")


def test_fails_when_the_config_file_is_missing_or_not_a_decoder(tmp_path: Path) -> None:
    text = GOOD.replace(f"architecture: {LLAMA_8B}", "config: config.json")
    [missing] = problems(text, tmp_path)
    assert missing.startswith(f"llm (line 6): config: cannot read {tmp_path / 'config.json'}")
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": 768}')
    [not_decoder] = problems(text, tmp_path)
    assert not_decoder == (
        f"llm (line 6): config: {tmp_path / 'config.json'} lacks num_hidden_layers, "
        "num_attention_heads, intermediate_size, vocab_size. Fix: use the config.json of a "
        "decoder-only model (Llama, Mistral, Qwen...), or give the shape inline under "
        "`llm.architecture`"
    )


def test_fails_when_the_inline_shape_is_inconsistent() -> None:
    text = GOOD.replace("num_key_value_heads: 8", "num_key_value_heads: 12")
    assert problems(text) == [
        "llm.architecture (line 8): num_attention_heads (32) is not a multiple of "
        "num_key_value_heads (12): grouped-query attention shares each KV head among whole "
        "groups of query heads. Fix: copy both values from the model's config.json"
    ]


def test_fails_when_max_model_len_exceeds_what_the_model_was_trained_for() -> None:
    text = GOOD.replace("max_model_len: 4096", "max_model_len: 200000")
    assert problems(text) == [
        "llm (line 6): max_model_len 200000 is longer than the model's max_position_embeddings "
        "(131072); vLLM refuses it. Fix: use at most 131072"
    ]


def test_the_engine_build_follows_the_family() -> None:
    """inf2 has no vLLM Neuron plugin build (Trn2/Trn3 only): NxD Inference's vLLM serves it."""
    loaded = parse_spec(FLEET)
    name, image = loaded.llm_engine("inf2.xlarge")
    assert (name, image.repository, image.neuron_sdk) == (
        "vllm-nxd-inference",
        "pytorch-inference-vllm-neuronx",
        "2.31.1",
    )
    assert loaded.llm_engine("trn2.48xlarge")[0] == "vllm-neuron"


def test_fails_when_no_engine_build_serves_the_family() -> None:
    text = FLEET.replace("[inf2.xlarge]", "[inf3.xlarge]")
    assert problems(text) == [
        "fleet.instance_types[0] (line 9): inf3.xlarge: no LLM engine in the compatibility "
        "matrix serves inf3 on EC2. Fix: an instance type of inf2, trn1, trn2, trn3; or add the "
        "engine to your catalog override file under `compatibility.engines`"
    ]


def test_fails_when_the_distribution_or_sdk_pairing_does_not_exist() -> None:
    plugin = FLEET.replace("max_num_seqs: 4", "max_num_seqs: 4\n  distribution: vllm-neuron")
    assert problems(plugin) == [
        "fleet.instance_types[0] (line 10): inf2.xlarge: vllm-neuron does not serve inf2 (it "
        "serves trn2, trn3). Fix: llm.distribution vllm-nxd-inference (or auto); or add the "
        "engine to your catalog override file under `compatibility.engines`"
    ]
    pinned = FLEET.replace("max_num_seqs: 4", "max_num_seqs: 4\n  neuron_sdk: 2.32.0")
    assert problems(pinned) == [
        "fleet.instance_types[0] (line 10): inf2.xlarge: no LLM engine image for inf2 ships "
        "Neuron SDK 2.32.0 (published: 2.31.1, 2.30.0, 2.28.0, 2.26.1, 2.24.1). Fix: another "
        "llm.neuron_sdk from that list, or remove it; or add the engine to your catalog "
        "override file under `compatibility.engines`"
    ]


def test_the_llm_examples_resolve_the_degrees_their_comments_compute() -> None:
    examples = Path(__file__).parents[2] / "examples"
    endpoint = load_spec(examples / "llm-endpoint.yaml")
    assert endpoint.llm_service("ml.inf2.xlarge").settings.tensor_parallel == 2
    fleet = load_spec(examples / "llm-fleet.yaml")
    assert fleet.llm_service("trn2.48xlarge").settings.tensor_parallel == 16
    assert fleet.llm_engine("trn2.48xlarge")[0] == "vllm-neuron"


def test_a_fleet_runs_at_most_five_servers_per_instance() -> None:
    """70B fits 8 of a trn2.48xlarge's 64 logical cores, but 8 servers exceed the 5 target
    groups one ALB action spreads over: auto takes 16 (4 servers); a fixed 8 is refused."""
    fleet = GOOD.replace(LLAMA_8B, LLAMA_70B).replace(
        "endpoint: {instance_type: ml.inf2.xlarge}", "fleet: {instance_types: [trn2.48xlarge]}"
    )
    assert parse_spec(fleet).llm_service("trn2.48xlarge").settings.tensor_parallel == 16
    fixed = fleet.replace("max_num_seqs: 4", "max_num_seqs: 4\n  tensor_parallel: 8")
    assert problems(fixed) == [
        "fleet.instance_types (line 10): tensor_parallel 8 makes 8 vLLM servers per instance; "
        "the load balancer spreads over at most 5 (one target group per server). Fix: a larger "
        "tensor_parallel (or `auto`), or a smaller instance size"
    ]


def test_fails_when_the_neuron_sdk_pin_is_not_a_release() -> None:
    text = GOOD.replace("max_num_seqs: 4", "max_num_seqs: 4\n  neuron_sdk: latest")
    assert problems(text) == [
        "llm.neuron_sdk (line 8): got 'latest', which does not match ^\\d+\\.\\d+\\.\\d+$. Fix: "
        "use a Neuron SDK release like 2.31.1, quoted"
    ]


def test_fails_when_an_endpoint_model_cannot_start_within_sagemakers_hour() -> None:
    """70B from S3 without compiled artefacts: inf3kit.llm.startup estimates 6593 s (the rule
    LlmEndpoint applies); compiled artefacts or an explicit timeout are accepted."""
    text = GOOD.replace(LLAMA_8B, LLAMA_70B).replace("ml.inf2.xlarge", "ml.trn1.32xlarge")
    text = text.replace(
        f"weights: {{huggingface: meta-llama/Llama-3.1-8B-Instruct, revision: {REVISION}}}",
        "weights: {s3: s3://models/llama-70b/}",
    )
    assert problems(text) == [
        "endpoint (line 9): startup_timeout_seconds: this model needs about 6593 s to load and "
        "compile (inf3kit.llm.startup's stated rates), above SageMaker's 3600 s limit for the "
        "startup health check. Fix: pre-compile it (`inf3kit llm compile`) and pass "
        "model.weights.compiled, or set startup_timeout_seconds (at most 1 hour) if you "
        "measured a faster start"
    ]
    compiled = text.replace("{s3: s3://models/llama-70b/}", (
        "{s3: s3://models/llama-70b/, compiled: s3://models/llama-70b-tp16/}"
    ))  # fmt: skip
    parse_spec(compiled)
