"""Adapter files are checked for their values on load: floating point and finite, or refused."""

from __future__ import annotations

import json

import pytest
import torch

from unsamv2.errors import InputError
from unsamv2.model import build_model, load_adapter, read_adapter, save_adapter


def _rewrite(path: str, change) -> None:
    """Rewrite an adapter file with ``change(name, tensor)`` applied to every tensor, metadata kept."""
    from safetensors.torch import save

    tensors, metadata = read_adapter(path)
    with open(path, "wb") as f:
        f.write(save({k: change(k, v).contiguous() for k, v in tensors.items()}, metadata=metadata))


@pytest.mark.parametrize("case, expected", [
    ("all-nan", "not finite"),
    ("one-inf", "not finite"),
    ("int64", "not floating point"),
])
def test_a_non_finite_or_integer_adapter_is_refused(fresh_tiny, randomize_adapter, tmp_path, case, expected):
    randomize_adapter(fresh_tiny, seed=3)
    path = str(tmp_path / "adapter.safetensors")
    save_adapter(path, fresh_tiny)
    first = sorted(read_adapter(path)[0])[0]
    changes = {
        "all-nan": lambda k, v: torch.full_like(v, float("nan")),
        "one-inf": lambda k, v: v.clone().fill_(float("inf")) if k == first else v,
        "int64": lambda k, v: (v * 100).to(torch.int64),
    }
    _rewrite(path, changes[case])
    target = build_model("tiny")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(InputError, match=expected) as info:
        load_adapter(target, path)
    message = str(info.value)
    assert path in message and message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched
    with pytest.raises(InputError, match=expected):
        build_model("tiny", adapter=path)


def test_a_finite_float16_adapter_still_loads(fresh_tiny, randomize_adapter, tmp_path):
    randomize_adapter(fresh_tiny, seed=4)
    path = str(tmp_path / "adapter.safetensors")
    save_adapter(path, fresh_tiny, {"note": json.dumps("half")})
    _rewrite(path, lambda k, v: v.half())
    target = build_model("tiny")
    load_adapter(target, path)
    ref = dict(fresh_tiny.named_parameters())
    for name, param in target.named_parameters():
        if name in read_adapter(path)[0]:
            torch.testing.assert_close(param.detach(), ref[name].detach().half().float())
