"""The fit check, against arithmetic done by hand for Llama-3.1-8B and Llama-3.1-70B.

Shapes from the models' config.json. Per layer: attention q+o = 2 x hidden x heads x head_dim,
k+v = 2 x hidden x kv_heads x head_dim, MLP = 3 x hidden x intermediate, two norms = 2 x
hidden; plus embeddings and an untied LM head (vocab x hidden each) and the final norm.

Llama-3.1-8B (hidden 4096, 32 layers, 32 heads, 8 KV heads, head_dim 128, intermediate 14336,
vocab 128256):
  layer  = 2*4096*4096 + 2*4096*1024 + 3*4096*14336 + 2*4096
         = 33,554,432 + 8,388,608 + 176,160,768 + 8,192 = 218,112,000
  total  = 32*218,112,000 + 2*128256*4096 + 4096 = 6,979,584,000 + 1,050,673,152 + 4,096
         = 8,030,261,248 parameters -> bfloat16 weights 16,060,522,496 B (14.96 GiB)
  KV     = 2 * 32 layers * 8 heads * 128 * 2 B = 131,072 B per token;
           4096 tokens x 4 sequences = 16,384 tokens -> 2,147,483,648 B (2 GiB)
  need   = 18,208,006,144 B (16.96 GiB)

Llama-3.1-70B (hidden 8192, 80 layers, 64 heads, 8 KV heads, head_dim 128, intermediate 28672,
vocab 128256):
  layer  = 2*8192*8192 + 2*8192*1024 + 3*8192*28672 + 2*8192
         = 134,217,728 + 16,777,216 + 704,643,072 + 16,384 = 855,654,400
  total  = 80*855,654,400 + 2*128256*8192 + 8192 = 68,452,352,000 + 2,101,346,304 + 8,192
         = 70,553,706,496 parameters -> bfloat16 weights 141,107,412,992 B (131.42 GiB)
  KV     = 2 * 80 * 8 * 128 * 2 B = 327,680 B per token; x 16,384 tokens = 5 GiB
  need   = 136.42 GiB at a degree <= 8 KV heads. At degree 16 each rank holds one KV head
           (16 held): KV doubles to 10 GiB and the k/v weights gain 2*80*8*128*8192 =
           1,342,177,280 parameters (2.5 GiB): 133.92 + 10 = 143.92 GiB.

Memory per (logical) NeuronCore, after the 10% reserve:
  inf2, trn1, inf3 (provisional): 32 GiB / 2 cores = 16 GiB -> 14.4 GiB usable per core
  trn2: 96 GiB x 16 chips / 64 logical cores (LNC=2) = 24 GiB -> 21.6 GiB usable per core
  trn3 (provisional): 144 GiB x 16 / 64 = 36 GiB -> 32.4 GiB usable per core
"""

from __future__ import annotations

import pytest

from inf3kit.catalog import load_catalog
from inf3kit.llm import LlmSettings, ModelArchitecture
from inf3kit.llm.architecture import parameter_count
from inf3kit.llm.fit import (
    GIB,
    choose_tensor_parallel,
    engine_cores,
    fit_problems,
    footprint,
    valid_degrees,
)

CATALOG = load_catalog()
LLAMA_8B = ModelArchitecture(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
)
LLAMA_70B = ModelArchitecture(
    hidden_size=8192,
    num_hidden_layers=80,
    num_attention_heads=64,
    num_key_value_heads=8,
    intermediate_size=28672,
    vocab_size=128256,
)
SETTINGS = LlmSettings(tensor_parallel=1, max_model_len=4096, max_num_seqs=4)


def test_parameters_weights_and_kv_cache_match_the_hand_arithmetic() -> None:
    assert parameter_count(LLAMA_8B) == 8_030_261_248
    assert parameter_count(LLAMA_70B) == 70_553_706_496
    small = footprint(LLAMA_8B, SETTINGS, degree=2)
    assert (small.weight_bytes, small.kv_cache_bytes) == (16_060_522_496, 2 * GIB)
    big = footprint(LLAMA_70B, SETTINGS, degree=8)
    assert (big.weight_bytes, big.kv_cache_bytes) == (141_107_412_992, 5 * GIB)
    replicated = footprint(LLAMA_70B, SETTINGS, degree=16)
    assert replicated.parameters == 70_553_706_496 + 1_342_177_280
    assert replicated.kv_cache_bytes == 10 * GIB


def test_tied_embeddings_count_once_and_a_given_count_wins() -> None:
    tied = ModelArchitecture(**{**LLAMA_8B.__dict__, "tie_word_embeddings": True})
    assert parameter_count(tied) == 8_030_261_248 - 128256 * 4096
    given = ModelArchitecture(**{**LLAMA_8B.__dict__, "parameters": 8_000_000_000})
    assert footprint(given, SETTINGS, 2).weight_bytes == 16_000_000_000


def test_quantization_halves_the_weights_but_not_the_kv_cache() -> None:
    quantized = footprint(LLAMA_70B, LlmSettings(1, 4096, 4, quantization="fp8"), degree=8)
    assert (quantized.weight_bytes, quantized.kv_cache_bytes) == (70_553_706_496, 5 * GIB)


def test_the_engine_sees_logical_neuroncores_on_trn2() -> None:
    trn2 = engine_cores(CATALOG.get("trn2.48xlarge"))
    assert (trn2.count, trn2.memory_bytes) == (64, 24 * GIB)
    assert engine_cores(CATALOG.get("ml.inf2.48xlarge")).count == 24


def test_degrees_divide_the_cores_and_the_heads() -> None:
    """inf2.48xlarge has 24 cores but 70B has 64 heads: 3, 6, 12 and 24 are not degrees."""
    inf2 = engine_cores(CATALOG.get("inf2.48xlarge"))
    assert valid_degrees(LLAMA_70B, inf2) == [1, 2, 4, 8]
    assert valid_degrees(LLAMA_8B, engine_cores(CATALOG.get("trn1.32xlarge"))) == [
        1,
        2,
        4,
        8,
        16,
        32,
    ]


@pytest.mark.parametrize(
    ("instance_type", "degree_8b", "degree_70b"),
    [
        # 8B needs 16.96 GiB: one inf2/trn1/inf3 core holds 14.4, two hold 28.8 -> 2.
        # 70B needs 136.42 GiB: 8 cores of 14.4 hold 115.2; the next degree on 24 cores that
        # divides 64 heads does not exist (12, 24 do not divide 64) -> none on inf2/inf3.
        ("inf2.xlarge", 2, None),
        ("inf2.8xlarge", 2, None),
        ("inf2.24xlarge", 2, None),
        ("inf2.48xlarge", 2, None),
        ("ml.inf2.xlarge", 2, None),
        # trn1.32xlarge: 70B at 8 cores 115.2 < 136.42; at 16 cores 230.4 >= 143.92 -> 16.
        ("trn1.2xlarge", 2, None),
        ("trn1.32xlarge", 2, 16),
        ("ml.trn1.32xlarge", 2, 16),
        # trn2: one logical core holds 21.6 >= 16.96 -> 1; 70B: 4 x 21.6 = 86.4 < 136.42,
        # 8 x 21.6 = 172.8 -> 8.
        ("trn2.48xlarge", 1, 8),
        # trn3 (provisional): 32.4 per core -> 1; 70B: 4 x 32.4 = 129.6 < 136.42 -> 8.
        ("trn3.48xlarge", 1, 8),
        # inf3 (provisional) mirrors inf2.
        ("inf3.xlarge", 2, None),
        ("inf3.48xlarge", 2, None),
        ("ml.inf3.xlarge", 2, None),
    ],
)
def test_auto_picks_the_hand_computed_degree(
    instance_type: str, degree_8b: int | None, degree_70b: int | None
) -> None:
    assert choose_tensor_parallel(LLAMA_8B, SETTINGS, instance_type, catalog=CATALOG) == degree_8b
    assert choose_tensor_parallel(LLAMA_70B, SETTINGS, instance_type, catalog=CATALOG) == degree_70b


def test_one_degree_for_several_types_is_the_smallest_that_suits_each() -> None:
    """70B: trn2 alone takes 8, trn1.32xlarge alone 16; together 16 (it divides both)."""
    both = ["trn2.48xlarge", "trn1.32xlarge"]
    assert choose_tensor_parallel(LLAMA_70B, SETTINGS, both, catalog=CATALOG) == 16


def test_int8_fits_70b_on_inf2_48xlarge() -> None:
    """int8: 70,553,706,496 B (65.71 GiB) + 5 GiB KV = 70.71 GiB; 4 cores hold 57.6, 8 hold
    115.2 -> 8."""
    int8 = LlmSettings(1, 4096, 4, quantization="int8")
    assert choose_tensor_parallel(LLAMA_70B, int8, "inf2.48xlarge", catalog=CATALOG) == 8


def test_fails_when_a_70b_model_is_put_on_inf2_xlarge() -> None:
    assert fit_problems(LLAMA_70B, SETTINGS, "inf2.xlarge", catalog=CATALOG, auto=True) == [
        "the model (70.55B parameters: 131.4 GiB of bfloat16 weights + 5.0 GiB KV cache for "
        "4096 tokens x 4 sequences = 136.4 GiB) does not fit inf2.xlarge: even its largest "
        "valid group, 2 NeuronCores with 32.0 GiB, 28.8 GiB after the 10% reserve. What would "
        "fit: another family, trn1.32xlarge (tensor_parallel 16) or trn2.48xlarge "
        "(tensor_parallel 8) or trn3.48xlarge (tensor_parallel 8); quantization int8 on "
        "inf2.48xlarge (tensor_parallel 8) (check the model's accuracy)"
    ]


def test_fails_with_a_computed_shorter_length_and_fewer_sequences() -> None:
    """8B, 8192 tokens x 64 sequences on trn1.2xlarge: KV = 131,072 B x 524,288 = 64 GiB.
    Room at 2 cores: 28.8 GiB - 16,060,522,496 B = 14,863,242,035 B; / (131,072 x 64) = 1771
    tokens; / (131,072 x 8192) = 13 sequences. trn1.32xlarge: 78.96 GiB needs 8 cores (4 hold
    57.6). Another family: inf2 needs 8 cores (inf2.48xlarge; 24xlarge's 12 cores allow at most
    4), trn2 4 logical cores (86.4), trn3 4 (2 hold 64.8), inf3 as inf2."""
    long = LlmSettings(1, max_model_len=8192, max_num_seqs=64)
    [problem] = fit_problems(LLAMA_8B, long, "trn1.2xlarge", catalog=CATALOG, auto=True)
    assert problem.endswith(
        "What would fit: a bigger size, trn1.32xlarge (tensor_parallel 8); another family, "
        "inf2.48xlarge (tensor_parallel 8) or trn2.48xlarge (tensor_parallel 4) or "
        "trn3.48xlarge (tensor_parallel 4) or inf3.48xlarge (tensor_parallel 8); max_model_len "
        "1771 or less (tensor_parallel 2); max_num_seqs 13 or less (tensor_parallel 2)"
    )


def test_fails_when_a_fixed_degree_is_not_valid_here() -> None:
    fixed = LlmSettings(tensor_parallel=12, max_model_len=4096, max_num_seqs=4)
    assert fit_problems(LLAMA_70B, fixed, "inf2.48xlarge", catalog=CATALOG) == [
        "tensor_parallel 12 is not valid for this model on inf2.48xlarge (24 NeuronCores, 64 "
        "attention heads, 8 KV heads): valid degrees are 1, 2, 4, 8. Fix: use one of those, or "
        "`auto`"
    ]


def test_a_limit_on_groups_per_instance_raises_the_degree() -> None:
    """70B on trn2.48xlarge fits 8 logical cores (8 groups); at most 5 groups: 16 (4 groups)."""
    limited = choose_tensor_parallel(
        LLAMA_70B, SETTINGS, "trn2.48xlarge", catalog=CATALOG, max_groups_per_instance=5
    )
    assert limited == 16


def test_a_fleet_degree_leaves_the_same_number_of_groups_on_every_type() -> None:
    """A 1B model fits 1 core anywhere. inf2.48xlarge (24 cores) and trn1.32xlarge (32) share
    the degrees 1, 2, 4 and 8, which leave 24/32, 12/16, 6/8 and 3/4 groups: never equal."""
    small = ModelArchitecture(
        hidden_size=2048,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=8192,
        vocab_size=128256,
    )
    types = ["inf2.48xlarge", "trn1.32xlarge"]
    assert choose_tensor_parallel(small, SETTINGS, types, catalog=CATALOG) == 1
    assert (
        choose_tensor_parallel(small, SETTINGS, types, catalog=CATALOG, max_groups_per_instance=5)
        is None
    )


def test_construct_settings_refuse_auto_a_bad_dtype_and_quantization() -> None:
    from inf3kit.llm.settings import settings_problems

    bad = LlmSettings("auto", 4096, 4, dtype="fp16", quantization="int4")  # type: ignore[arg-type]
    assert [p.split(":")[0] for p in settings_problems(bad)] == [
        "settings.tensor_parallel",
        "settings.dtype",
        "settings.quantization",
    ]
    assert settings_problems(LlmSettings(2, 4096, 4)) == []
