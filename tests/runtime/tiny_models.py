"""Small models the runtime tests compile (loaded by path, so tests need no package)."""

import torch
from torch import nn


class Echo(nn.Module):
    """Output = 2 * input + 1, row by row: each response reveals which request it answers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1


class TwoInTwoOut(nn.Module):
    """INT64 ids and FP32 weights in; their weighted sum (FP32) and the ids + 1 (INT64) out."""

    def forward(
        self, ids: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return (ids.to(torch.float32) * weights).sum(dim=1, keepdim=True), ids + 1


class IntSum(nn.Module):
    """INT32 and UINT8 in, their INT32 sum out: integer inputs whose ranges the server checks."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b.to(torch.int32)


class MaskedTokens(nn.Module):
    """INT64 ``ids`` and ``mask`` [batch, seq] in; out: ``tokens`` = ids * mask (follows seq) and
    ``stats`` = [count of ids == 7, count of mask == 0] per row, which reveal the padding (the
    test pads ids with 7 and mask with 0) and so the bucket a request was padded to."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stats = torch.stack([(ids == 7).sum(dim=1), (mask == 0).sum(dim=1)], dim=1)
        return ids * mask, stats


def echo() -> nn.Module:
    return Echo()


def two_in_two_out() -> nn.Module:
    return TwoInTwoOut()


def int_sum() -> nn.Module:
    return IntSum()


def masked_tokens() -> nn.Module:
    return MaskedTokens()


def not_a_module() -> str:
    return "nope"
