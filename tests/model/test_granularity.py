"""Granularity encoder, prompt token placement, and decoder token / LoRA structure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unsamv2.model.granularity import GranularityEncoder, fourier_features


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 1.0, allow_nan=False, width=32))
def test_fourier_features_follow_their_formula(g):
    feats = fourier_features(torch.tensor([g], dtype=torch.float32))[0].double().numpy()
    assert feats.shape == (128,)
    for k in range(64):
        freq = 100.0 ** (k / 64)
        assert feats[2 * k] == pytest.approx(math.sin(freq * g), abs=2e-5)      # sin first,
        assert feats[2 * k + 1] == pytest.approx(math.cos(freq * g), abs=2e-5)  # then cos, no 2*pi


def test_fourier_features_keep_leading_dimensions():
    g = torch.rand(3, 5)
    assert fourier_features(g).shape == (3, 5, 128)
    np.testing.assert_allclose(fourier_features(g)[1, 2], fourier_features(g[1, 2:3])[0])


def test_encoder_layout_and_sizes():
    enc = GranularityEncoder()
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert shapes == {
        "mlp.0.weight": (192, 128), "mlp.0.bias": (192,),
        "mlp.3.weight": (192, 192), "mlp.3.bias": (192,),
        "mlp.6.weight": (256, 192), "mlp.6.bias": (256,),
        "type_embedding.weight": (1, 256),
    }
    assert sum(p.numel() for n, p in enc.named_parameters() if n.startswith("mlp.")) == 111_232
    assert isinstance(enc.mlp[1], torch.nn.ReLU) and enc.mlp[2].p == pytest.approx(0.1)
    enc.eval()
    g = torch.tensor([0.1, 0.9])
    expected = enc.mlp(fourier_features(g)) + enc.type_embedding.weight
    torch.testing.assert_close(enc(g), expected)


def test_granularity_token_is_appended_after_points_and_padding(tiny_model):
    encoder = tiny_model.sam_prompt_encoder
    coords = torch.tensor([[[10.0, 20.0], [100.0, 30.0]]]).repeat(2, 1, 1)
    labels = torch.tensor([[1, 0]]).repeat(2, 1)
    g = torch.tensor([0.2, 0.8])
    with torch.no_grad():
        plain, dense = encoder(points=(coords, labels), boxes=None, masks=None)
        with_g, dense_g = encoder(points=(coords, labels), boxes=None, masks=None, granularity=g)
        token = encoder.granularity_encoder(g)
    assert plain.shape == (2, 3, 256)  # 2 points + SAM's padding point
    assert with_g.shape == (2, 4, 256)
    torch.testing.assert_close(with_g[:, :3], plain)
    torch.testing.assert_close(with_g[:, 3], token)
    torch.testing.assert_close(dense_g, dense)


def test_without_granularity_the_prompt_encoder_is_sam2s(tiny_model):
    from sam2.modeling.sam.prompt_encoder import PromptEncoder

    ours = tiny_model.sam_prompt_encoder
    sam = PromptEncoder(embed_dim=256, image_embedding_size=ours.image_embedding_size,
                        input_image_size=ours.input_image_size, mask_in_chans=16)
    missing, unexpected = sam.load_state_dict(ours.state_dict(), strict=False)
    assert not missing and all(k.startswith("granularity_encoder.") for k in unexpected)
    coords, labels = torch.tensor([[[5.0, 6.0]]]), torch.tensor([[1]])
    boxes = torch.tensor([[1.0, 2.0, 50.0, 60.0]])
    mask = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        for kwargs in ({"boxes": None, "masks": None}, {"boxes": boxes, "masks": mask}):
            a = ours(points=(coords, labels), **kwargs)
            b = sam(points=(coords, labels), **kwargs)
            for x, y in zip(a, b, strict=True):
                torch.testing.assert_close(x, y)


def test_with_boxes_the_token_goes_before_the_box_corners(tiny_model):
    encoder = tiny_model.sam_prompt_encoder
    coords, labels = torch.tensor([[[5.0, 6.0]]]), torch.tensor([[1]])
    boxes = torch.tensor([[1.0, 2.0, 50.0, 60.0]])
    with torch.no_grad():
        sparse, _ = encoder(points=(coords, labels), boxes=boxes, masks=None,
                            granularity=torch.tensor([0.5]))
        token = encoder.granularity_encoder(torch.tensor([0.5]))
    assert sparse.shape == (1, 4, 256)  # point (no padding when a box is given), g, 2 corners
    torch.testing.assert_close(sparse[:, 1], token)


def test_context_feeds_g_to_sam2_code_paths_and_restores(tiny_model):
    encoder = tiny_model.sam_prompt_encoder
    coords, labels = torch.tensor([[[5.0, 6.0]]]), torch.tensor([[1]])
    with torch.no_grad(), tiny_model.granularity_prompt(0.3):
        sparse, _ = encoder(points=(coords, labels), boxes=None, masks=None)
        token = encoder.granularity_encoder(torch.tensor([0.3]))
        with tiny_model.granularity_prompt(None):
            assert encoder(points=(coords, labels), boxes=None, masks=None)[0].shape[1] == 2
    torch.testing.assert_close(sparse[:, -1], token)
    assert encoder(points=(coords, labels), boxes=None, masks=None)[0].shape[1] == 2


def test_decoder_has_the_granularity_token_and_its_hypernetwork(tiny_model):
    decoder = tiny_model.sam_mask_decoder
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items() if "granularity" in k}
    assert shapes == {
        "granularity_token.weight": (1, 256),
        "granularity_mlp.layers.0.weight": (256, 256), "granularity_mlp.layers.0.bias": (256,),
        "granularity_mlp.layers.1.weight": (256, 256), "granularity_mlp.layers.1.bias": (256,),
        "granularity_mlp.layers.2.weight": (32, 256), "granularity_mlp.layers.2.bias": (32,),
    }
    tokens = decoder._output_tokens()
    # object score, IoU, SAM-2's 4 mask tokens, then the granularity token
    assert tokens.shape == (7, 256)
    torch.testing.assert_close(tokens[-1], decoder.granularity_token.weight[0])
    torch.testing.assert_close(tokens[2:6], decoder.mask_tokens.weight)


def test_decoder_mask_and_object_pointer_come_from_the_granularity_token(fresh_tiny, photo):
    """Changing SAM-2's own mask hypernetworks changes nothing; the granularity MLP changes the
    mask; the returned token (the object pointer's source) is the granularity token's output."""
    from unsamv2.model.predictor import preprocess_image

    model = fresh_tiny
    with torch.no_grad():
        feats = model.encode_image(preprocess_image(photo, model.image_size))
        args = (feats, torch.tensor([[[100.0, 80.0]]]), torch.tensor([[1]]), torch.tensor([0.4]))
        before = model.decode(*args)
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            for p in mlp.parameters():
                p.add_(1.0)
        torch.testing.assert_close(model.decode(*args), before)
        captured = {}

        def keep_tokens(_module, _inputs, output):
            captured["hs"] = output[0]

        handle = model.sam_mask_decoder.transformer.register_forward_hook(keep_tokens)
        sparse, dense = model.sam_prompt_encoder(points=args[1:3], boxes=None, masks=None,
                                                 granularity=args[3])
        _, _, token, _ = model.sam_mask_decoder(
            feats.image_embed, model.sam_prompt_encoder.get_dense_pe(), sparse, dense,
            multimask_output=False, repeat_image=False, high_res_features=list(feats.high_res))
        handle.remove()
        torch.testing.assert_close(token[:, 0], captured["hs"][:, 6])
        model.sam_mask_decoder.granularity_mlp.layers[2].bias.add_(1.0)
        assert not torch.allclose(model.decode(*args).low_res_logits, before.low_res_logits)


@pytest.mark.integration
def test_importing_the_model_package_does_not_import_sam2():
    """sam2 sets up Hydra when imported: only building or using a model may import it."""
    import subprocess
    import sys

    code = ("import sys, unsamv2.model, unsamv2.model.adapter, unsamv2.cli.segment, unsamv2.cli.info; "
            "print(sorted(m for m in ('sam2', 'hydra') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
