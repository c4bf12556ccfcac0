"""The streamed training data: split, order, resume position, mask sampling, batches, S3."""

import numpy as np
import pytest
import torch

from unsamv2.data.stats import read_split
from unsamv2.train.config import AugmentConfig, TrainConfig
from unsamv2.train.data import MaskTableStream, StreamPosition, choose_masks, collate, load_sample
from unsamv2.train.loader import LoaderPosition, TrainLoader, is_human_slot


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_stream_visits_each_train_image_once_per_epoch(scene_table):
    split = read_split(scene_table["table"] + "/stats")
    stream = MaskTableStream(scene_table["table"], image_ids=split["train"], seed=3)
    n = len(split["train"])
    items = take(stream.iter_from(StreamPosition()), 3 * n)
    for epoch in range(3):
        ids = [r.image_id for r, pos in items[epoch * n:(epoch + 1) * n]]
        assert sorted(ids) == sorted(split["train"])
        assert all(pos.epoch == epoch for _, pos in items[epoch * n:(epoch + 1) * n])
    assert not set(split["val"]) & {r.image_id for r, _ in items}


def test_stream_resumes_from_any_position(scene_table):
    stream = MaskTableStream(scene_table["table"], image_ids=None, seed=1)
    items = take(stream.iter_from(StreamPosition()), 12)
    for k in range(11):
        again = take(stream.iter_from(items[k][1]), 12 - k - 1)
        assert [(r.image_id, p) for r, p in again] == [(r.image_id, p) for r, p in items[k + 1:]]
    other = take(MaskTableStream(scene_table["table"], image_ids=None, seed=2).iter_from(StreamPosition()), 12)
    assert [r.image_id for r, _ in other] != [r.image_id for r, _ in items]


def test_choose_masks():
    rng = np.random.default_rng(0)
    assert choose_masks(5, 30, rng).tolist() == [0, 1, 2, 3, 4]
    picked = choose_masks(100, 30, rng)
    assert len(set(picked.tolist())) == 30 and (np.diff(picked) > 0).all()


def test_sample_masks_and_granularity_come_from_the_table(scene_table):
    from unsamv2.data.images import load_image
    from unsamv2.data.rle import decode_rle
    from unsamv2.model.predictor import preprocess_image

    stream = MaskTableStream(scene_table["table"], image_ids=None, seed=0)
    record, _ = next(stream.iter_from(StreamPosition()))
    sample = load_sample(record, size=64, max_masks=5, augment=AugmentConfig(enabled=False), seed=0, epoch=0)
    assert sample.masks.shape[0] == min(5, len(record.rles)) and sample.masks.shape[1:] == (64, 64)
    assert sample.granularity.dtype == torch.float32
    assert torch.equal(sample.image, preprocess_image(load_image(record.image_uri).image, 64)[0])
    again = load_sample(record, size=64, max_masks=5, augment=AugmentConfig(enabled=False), seed=0, epoch=0)
    assert torch.equal(again.masks, sample.masks)
    # each chosen mask is one of the record's masks, with that mask's g
    full = [torch.from_numpy(decode_rle(r, record.height, record.width)) for r in record.rles]
    for mask, g in zip(sample.masks, sample.granularity.tolist(), strict=True):
        resized = [torch.nn.functional.interpolate(m[None, None].float(), (64, 64), mode="bilinear",
                                                   antialias=True)[0, 0] > 0.5 for m in full]
        matches = [i for i, m in enumerate(resized) if torch.equal(m, mask)]
        assert matches and any(abs(record.granularity[i] - g) < 1e-6 for i in matches)


def test_batches_split_records_over_workers(scene_table):
    config = TrainConfig(table_uri=scene_table["table"], output_uri="unused", batch_size=2, max_masks_per_image=3,
                         use_split=False, augment=AugmentConfig(enabled=False))
    alone = TrainLoader(config, 64).batches(LoaderPosition())
    worker0 = TrainLoader(config, 64, rank=0, world=2).batches(LoaderPosition())
    worker1 = TrainLoader(config, 64, rank=1, world=2).batches(LoaderPosition())
    b0, pos0 = next(worker0)
    b1, pos1 = next(worker1)
    a1, _ = next(alone)
    a2, apos = next(alone)
    assert pos0 == pos1 == apos and pos0.records == 4
    assert b0.image_ids + b1.image_ids == a1.image_ids + a2.image_ids
    assert torch.equal(b1.masks, a2.masks) and b0.counts.sum() == b0.masks.shape[0] == b0.granularity.shape[0]


def test_collate_keeps_objects_contiguous(scene_table):
    stream = MaskTableStream(scene_table["table"], image_ids=None, seed=0)
    recs = take(stream.iter_from(StreamPosition()), 2)
    samples = [load_sample(r, size=32, max_masks=4, augment=AugmentConfig(), seed=0, epoch=0) for r, _ in recs]
    batch = collate(samples)
    n0 = samples[0].masks.shape[0]
    assert torch.equal(batch.masks[:n0], samples[0].masks) and batch.counts.tolist()[0] == n0


def test_human_slots_follow_the_fraction():
    slots = [is_human_slot(i, 0.25) for i in range(100)]
    assert sum(slots) == 25 and slots[:4] == [False, False, False, True]
    assert not any(is_human_slot(i, 0.0) for i in range(10))


def test_missing_split_is_a_clear_error(scene_table, tmp_path):
    from unsamv2.errors import InputError

    config = TrainConfig(table_uri=scene_table["table"], output_uri=str(tmp_path), split_uri=str(tmp_path))
    with pytest.raises(InputError, match="unsamv2 stats"):
        TrainLoader(config, 64)


@pytest.mark.integration
def test_stream_reads_a_table_on_s3(scene_table, s3_bucket):
    from unsamv2.data import read_mask_table, write_table

    root = f"{s3_bucket}/table"
    write_table(root, read_mask_table(scene_table["table"]), shard_size=2)
    local = take(MaskTableStream(scene_table["table"], image_ids=None, seed=5).iter_from(StreamPosition()), 6)
    remote = take(MaskTableStream(root, image_ids=None, seed=5).iter_from(StreamPosition()), 6)
    assert [(r.image_id, r.rles, p) for r, p in remote] == [(r.image_id, r.rles, p) for r, p in local]
