"""A tiny demo model for inf3kit: a text-feature sentiment classifier with fixed weights.

Input ``INPUT__0``: FP32 [32], features of a text (e.g. hashed bag of words).
Output ``OUTPUT__0``: FP32 [2], class probabilities (negative, positive).
The weights come from a fixed seed, so every compile produces the same model.
"""

import torch
from torch import nn

FEATURES = 32
HIDDEN = 64
CLASSES = 2


class SentimentMLP(nn.Module):
    """Two-layer MLP with a softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(FEATURES, HIDDEN)
        self.out = nn.Linear(HIDDEN, CLASSES)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.out(torch.relu(self.hidden(features))), dim=-1)


def build() -> nn.Module:
    """Factory for `inf3kit compile examples.demo_model.model:build`."""
    generator = torch.Generator().manual_seed(1234)
    model = SentimentMLP()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model.eval()
