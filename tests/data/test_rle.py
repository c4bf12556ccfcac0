import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from unsamv2.data import rle
from unsamv2.errors import InputError

shapes = st.tuples(st.integers(1, 37), st.integers(1, 41))


@st.composite
def masks(draw):
    h, w = draw(shapes)
    kind = draw(st.sampled_from(["random", "empty", "full", "pixel"]))
    if kind == "empty":
        return np.zeros((h, w), bool)
    if kind == "full":
        return np.ones((h, w), bool)
    if kind == "pixel":
        m = np.zeros((h, w), bool)
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return m
    return draw(arrays(bool, (h, w)))


@settings(max_examples=300, deadline=None)
@given(masks())
def test_round_trip_single(mask):
    counts = rle.encode_rle(mask)
    assert isinstance(counts, bytes)
    out = rle.decode_rle(counts, *mask.shape)
    assert out.dtype == bool and out.shape == mask.shape
    np.testing.assert_array_equal(out, mask)
    assert rle.rle_areas([counts], *mask.shape)[0] == mask.sum()


@settings(max_examples=100, deadline=None)
@given(shapes, st.integers(0, 5), st.randoms(use_true_random=False))
def test_round_trip_stack_matches_pycocotools(shape, n, rnd):
    gen = np.random.default_rng(rnd.randint(0, 2**31))
    stack = gen.random((n, *shape)) < gen.random()
    counts = rle.encode_rles(stack)
    assert len(counts) == n
    np.testing.assert_array_equal(rle.decode_rles(counts, *shape), stack)
    for m, c in zip(stack, counts, strict=True):  # same bytes as pycocotools on a Fortran uint8 array
        ref = mask_utils.encode(np.asfortranarray(m[:, :, None].astype(np.uint8)))[0]["counts"]
        assert c == ref
    if n:
        boxes = rle.rle_bboxes(counts, *shape)
        assert boxes.shape == (n, 4)


def test_bbox_is_xywh():
    m = np.zeros((10, 20), bool)
    m[2:5, 7:15] = True  # rows 2..4 (y), cols 7..14 (x)
    (box,) = rle.rle_bboxes([rle.encode_rle(m)], 10, 20)
    np.testing.assert_array_equal(box, [7, 2, 8, 3])


def test_coco_segmentation_forms():
    m = np.zeros((6, 8), bool)
    m[1:4, 2:6] = True
    counts = rle.encode_rle(m)
    seg = rle.to_coco_segmentation(counts, 6, 8)
    assert isinstance(seg["counts"], str)
    assert rle.from_coco_segmentation(seg, 6, 8) == counts
    uncompressed = {"size": [6, 8], "counts": [13, 3, 3, 3, 3, 3, 3, 3, 14]}
    np.testing.assert_array_equal(rle.decode_rle(rle.from_coco_segmentation(uncompressed, 6, 8), 6, 8), m)
    poly = [[2.0, 1.0, 6.0, 1.0, 6.0, 4.0, 2.0, 4.0]]
    from_poly = rle.decode_rle(rle.from_coco_segmentation(poly, 6, 8), 6, 8)
    assert from_poly[2, 3] and not from_poly[5, 7]


def test_errors_are_one_sentence():
    with pytest.raises(InputError, match="size"):
        rle.from_coco_segmentation({"size": [5, 5], "counts": "04"}, 6, 8)
    with pytest.raises(InputError, match=r"\(N, H, W\)"):
        rle.encode_rles(np.zeros((4, 4), bool))
    with pytest.raises(InputError):
        rle.from_coco_segmentation("nope", 4, 4)


def test_areas_of_more_than_255_masks():
    """pycocotools' area() overflows a uint8 count from 256 masks on; ours chunks the call."""
    import numpy as np

    from unsamv2.data.rle import encode_rles, rle_areas

    masks = np.zeros((600, 8, 8), dtype=bool)
    for i in range(600):
        masks[i].flat[: 1 + i % 64] = True
    assert rle_areas(encode_rles(masks), 8, 8).tolist() == [1 + i % 64 for i in range(600)]
