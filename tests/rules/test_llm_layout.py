"""The LLM fleet's server layout rule, shared by the spec and the LlmFleet construct."""

from __future__ import annotations

from inf3kit.rules import llm_server_layout_problems


def test_a_degree_that_tiles_every_type_into_at_most_five_servers_passes() -> None:
    assert llm_server_layout_problems({"trn2.48xlarge": 64}, 16) == []


def test_fails_when_the_degree_leaves_cores_or_types_differ_or_too_many_servers() -> None:
    assert llm_server_layout_problems({"inf2.24xlarge": 12, "trn1.32xlarge": 32}, 8) == [
        "tensor_parallel 8 does not divide the 12 NeuronCores of inf2.24xlarge, so servers "
        "cannot tile it. Fix: use a divisor of 12"
    ]
    assert llm_server_layout_problems({"inf2.48xlarge": 24, "trn1.32xlarge": 32}, 2) == [
        "the instance types run different numbers of vLLM servers at tensor_parallel 2 "
        "(inf2.48xlarge: 12, trn1.32xlarge: 16); every instance must answer on every server "
        "port the load balancer checks. Fix: list types with the same NeuronCore count",
        "tensor_parallel 2 makes 16 vLLM servers per instance; the load balancer spreads over "
        "at most 5 (one target group per server). Fix: a larger tensor_parallel (or `auto`), or "
        "a smaller instance size",
    ]
