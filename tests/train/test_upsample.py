"""The matrix form of bilinear upsampling against PyTorch's kernel (values and gradients)."""

import pytest
import torch
import torch.nn.functional as F

from unsamv2.train.upsample import upsample_bilinear


@pytest.mark.parametrize(("size_in", "size_out"), [((32, 32), (128, 128)), ((8, 8), (32, 32)),
                                                  ((7, 5), (29, 20)), ((4, 4), (4, 4))])
def test_upsample_matches_interpolate(size_in, size_out):
    torch.manual_seed(0)
    x = (torch.randn(3, 2, *size_in) * 5).requires_grad_()
    ref = F.interpolate(x, size_out, mode="bilinear", align_corners=False)
    ours = upsample_bilinear(x, size_out)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)  # logits of magnitude ~5
    grad = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad(ref, x, grad)
    (our_grad,) = torch.autograd.grad(ours, x, grad)
    torch.testing.assert_close(our_grad, ref_grad, atol=2e-5, rtol=1e-5)


def test_upsample_keeps_a_mask_border_where_the_kernel_puts_it():
    """A step edge between low-res columns 3 and 4 (of 8) lands between output columns 15 and 16."""
    low = torch.full((1, 8, 8), -10.0)
    low[..., 4:] = 10.0
    high = upsample_bilinear(low, (32, 32))
    assert (high[0, :, :16] < 0).all() and (high[0, :, 16:] > 0).all()
