"""Average recall against hand-computable cases, and pooling over granularity values."""

import numpy as np
import pytest

from unsamv2.data.rle import encode_rle, to_coco_segmentation
from unsamv2.errors import InputError
from unsamv2.eval.whole_image import ar_by_granularity, average_recall, pool_detections


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def coco_gt(first_ann_id=0):
    """Two images of 20x30 with two objects each; annotation ids start at ``first_ann_id``."""
    h, w = 20, 30
    masks = {1: [rect(h, w, 0, 8, 0, 8), rect(h, w, 10, 20, 10, 25)],
             0: [rect(h, w, 2, 6, 2, 20), rect(h, w, 12, 18, 0, 6)]}
    images, anns = [], []
    for image_id, ms in masks.items():
        images.append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.png"})
        for m in ms:
            anns.append({"id": first_ann_id + len(anns), "image_id": image_id, "category_id": 7,
                         "segmentation": to_coco_segmentation(encode_rle(m), h, w), "iscrowd": 0})
    return {"images": images, "annotations": anns}, masks


def dets_from(masks, score=1.0):
    return [{"image_id": i, "segmentation": encode_rle(m), "score": score - 0.01 * k}
            for i, ms in masks.items() for k, m in enumerate(ms)]


def test_ground_truth_as_detections_gives_full_recall():
    gt, masks = coco_gt()
    ar = average_recall(gt, dets_from(masks))
    assert ar == {1: pytest.approx(0.5), 10: 1.0, 100: 1.0, 1000: 1.0}


def test_no_detections_gives_zero_not_a_crash():
    gt, _ = coco_gt()
    assert average_recall(gt, []) == {1: 0.0, 10: 0.0, 100: 0.0, 1000: 0.0}


def test_half_of_the_objects_gives_one_half():
    gt, masks = coco_gt(first_ann_id=5)
    half = {i: ms[:1] for i, ms in masks.items()}
    assert average_recall(gt, dets_from(half), (1, 100))[100] == pytest.approx(0.5)


def test_ground_truth_id_zero_is_matched_once_only():
    gt, masks = coco_gt(first_ann_id=0)
    # Two copies of each object: with id 0 kept, pycocotools would match id 0 twice.
    dets = dets_from(masks) + dets_from(masks, score=0.5)
    assert average_recall(gt, dets, (100,))[100] == 1.0
    only_first = [d for d in dets_from(masks) if d["image_id"] == 1][:1] * 3
    assert average_recall(gt, only_first, (100,))[100] == pytest.approx(0.25)


def test_partial_overlap_counts_only_above_each_threshold():
    h, w = 10, 10
    obj = rect(h, w, 0, 10, 0, 10)
    gt = {"images": [{"id": 3, "height": h, "width": w}],
          "annotations": [{"id": 1, "image_id": 3, "segmentation": to_coco_segmentation(encode_rle(obj), h, w)}]}
    det = rect(h, w, 0, 10, 0, 7)  # IoU 0.7: recalled at .50, .55, .60, .65, .70 -> 5 of 10
    ar = average_recall(gt, [{"image_id": 3, "segmentation": encode_rle(det), "score": 0.9}], (1,))
    assert ar[1] == pytest.approx(0.5)


def test_crowd_ground_truth_is_not_an_object_and_polygons_work():
    gt, masks = coco_gt()
    gt["annotations"].append({"id": 99, "image_id": 1, "iscrowd": 1,
                              "segmentation": [[0, 0, 29, 0, 29, 19, 0, 19]]})
    assert average_recall(gt, dets_from(masks), (100,))[100] == 1.0
    with pytest.raises(InputError):
        average_recall({"images": gt["images"], "annotations": []}, [])
    with pytest.raises(InputError):
        average_recall(gt, [{"image_id": 42, "segmentation": b"", "score": 1.0}])


def test_pooling_over_granularities_scores_by_predicted_iou():
    h, w = 20, 30
    a, b = rect(h, w, 0, 8, 0, 8), rect(h, w, 10, 20, 10, 25)
    records = [
        {"segmentation": encode_rle(a), "predicted_iou": 0.7, "granularity": 0.1},
        {"segmentation": to_coco_segmentation(encode_rle(b), h, w), "predicted_iou": 0.9, "granularity": 1.0},
        {"segmentation": encode_rle(a | b), "predicted_iou": 0.8, "granularity": 1.0},
    ]
    dets = pool_detections(1, records, h, w)
    assert [d["score"] for d in dets] == [0.9, 0.8, 0.7]
    assert all(d["image_id"] == 1 and d["segmentation"]["size"] == [h, w] for d in dets)
    assert [d["granularity"] for d in pool_detections(1, records, h, w, granularities=[0.1])] == [0.1]
    gt = {"images": [{"id": 1, "height": h, "width": w}],
          "annotations": [{"id": 0, "image_id": 1, "segmentation": to_coco_segmentation(encode_rle(m), h, w)}
                          for m in (a, b)]}
    assert average_recall(gt, dets, (1, 2))[2] == pytest.approx(0.5)  # top-2: b and a|b
    assert average_recall(gt, dets, (3,))[3] == 1.0
    assert ar_by_granularity(gt, dets, [0.1, 1.0], max_det=1000) == {0.1: 0.5, 1.0: 0.5}
