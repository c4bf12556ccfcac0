"""Shared fixtures for the model tests: the tiny model (built once), images, the oracle folder."""

from __future__ import annotations

import numpy as np
import pytest
from support.shared_fixtures import shared_fixture


@pytest.fixture(scope="session")
def tiny_model():
    """The bundled tiny config with its deterministic random weights (eval mode)."""
    from unsamv2.model import build_model

    return build_model("tiny")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo, (512, 512, 3) uint8 RGB, cropped to a non-square 300 x 420 region."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[40:340, 30:450])


def _randomize_adapter(model, seed: int = 0, lora_scale: float = 0.05) -> None:
    """Give every adapter tensor non-trivial values (LoRA B != 0), reproducibly."""
    import torch

    from unsamv2.model.adapter import adapter_parameters

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in adapter_parameters(model).items():
            scale = lora_scale if ".lora_" in name else 0.1
            param.copy_(torch.randn(param.shape, generator=gen) * scale)


@pytest.fixture(scope="session")
def randomize_adapter():
    """``randomize_adapter(model, seed=0)``: set all adapter tensors to reproducible random values."""
    return _randomize_adapter


@pytest.fixture
def fresh_tiny():
    """A new tiny model per test (for tests that modify weights)."""
    from unsamv2.model import build_model

    return build_model("tiny")


@pytest.fixture(scope="session")
def oracle_dir():
    """``../shared/fixtures/official-unsamv2-tiny``: the official code's outputs on a tiny checkpoint
    (skips the test, saying why, when the folder is absent)."""
    return shared_fixture("official-unsamv2-tiny")
