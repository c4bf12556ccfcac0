"""Dataset statistics of a mask table with Dask, and a deterministic train/val split.

``dask.dataframe`` frames are built shard by shard (``dd.from_map`` over the complete shards, each
partition read with pyarrow, local or ``s3://``), so tables larger than memory work. Outputs under
``out_uri``: ``stats.json`` (counts, errors by reason, masks per image, granularity histogram,
area distribution, origins), ``stats.png`` (the same as plots) and ``split.parquet``
(``image_id``, ``split`` in {"train", "val"} for every ``ok`` image; a hash of (seed, image_id)
decides, so the split is stable when the table grows).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from unsamv2.data import storage
from unsamv2.data.shards import ShardInfo, read_shard, scan_shards
from unsamv2.data.split import DEFAULT_VAL_FRACTION, check_val_fraction, split_of
from unsamv2.errors import InputError, StorageError

log = logging.getLogger(__name__)

G_BINS = np.round(np.linspace(0.1, 1.0, 10), 2)  # edges of 9 bins; 1.0 falls in the last one
AREA_BINS = np.array([0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0 + 1e-9])  # fraction of image


@dataclass(frozen=True)
class TableStats:
    """Summary statistics of a mask table (JSON-serialisable)."""

    images: int
    ok_images: int
    errors: dict[str, int]
    masks: int
    masks_per_image: dict[str, float]
    granularity_hist: dict[str, Any]
    area_hist: dict[str, Any]
    origins: dict[str, int]
    split: dict[str, int]


def _image_frame(info: ShardInfo) -> pd.DataFrame:
    t = read_shard(info, columns=["image_id", "status", "error", "masks"])
    return pd.DataFrame({"image_id": t["image_id"].to_numpy(), "status": t["status"].to_pylist(),
                         "error": t["error"].to_pylist(),
                         "n_masks": pc.list_value_length(t["masks"]).to_numpy(zero_copy_only=False)})


def _mask_frame(info: ShardInfo) -> pd.DataFrame:
    t = read_shard(info, columns=["image_id", "height", "width", "masks"])
    lengths = pc.list_value_length(t["masks"]).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(t["masks"])
    pixels = (t["height"].to_numpy(zero_copy_only=False).astype(np.float64)
              * t["width"].to_numpy(zero_copy_only=False).astype(np.float64))
    return pd.DataFrame({
        "image_id": np.repeat(t["image_id"].to_numpy(), lengths),
        "granularity": pc.struct_field(flat, "granularity").to_numpy(zero_copy_only=False).astype(np.float64),
        "rel_area": pc.struct_field(flat, "area").to_numpy(zero_copy_only=False) / np.repeat(pixels, lengths),
        "origin": pc.struct_field(flat, "origin").to_pylist(),
    })


def _frames(uri: str) -> tuple[Any, Any]:
    import dask.dataframe as dd

    if not storage.exists(uri):
        raise StorageError(f"{uri} does not exist; give the folder (or s3:// prefix) of a mask table.")
    shards, damaged = scan_shards(uri)
    for index, reason in damaged.items():
        log.warning("left out shard %d: %s", index, reason)
    if not shards:
        raise InputError(f"{uri} has no complete shards yet; run 'unsamv2 mine' first or check the path.")
    meta_i = pd.DataFrame({"image_id": pd.Series(dtype="int64"), "status": pd.Series(dtype="object"),
                           "error": pd.Series(dtype="object"), "n_masks": pd.Series(dtype="int32")})
    meta_m = pd.DataFrame({"image_id": pd.Series(dtype="int64"), "granularity": pd.Series(dtype="float64"),
                           "rel_area": pd.Series(dtype="float64"), "origin": pd.Series(dtype="object")})
    return dd.from_map(_image_frame, shards, meta=meta_i), dd.from_map(_mask_frame, shards, meta=meta_m)


def _hist(values: Any, bins: np.ndarray) -> dict[str, Any]:
    import dask.array as da

    counts, _ = da.histogram(values, bins=bins)
    return {"edges": [float(b) for b in bins], "counts": [int(c) for c in counts.compute()]}


def compute_stats(table_uri: str, out_uri: str, *, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0) -> TableStats:
    """Compute the statistics and split of the table at ``table_uri``; write them under ``out_uri``."""
    check_val_fraction(val_fraction)
    images, masks = _frames(table_uri)
    ok = images[images["status"] == "ok"]
    per_image = ok["n_masks"].describe().compute()
    g = masks["granularity"].dropna()
    split = ok[["image_id"]].assign(split=ok["image_id"].map(lambda i: split_of(i, val_fraction, seed),
                                                             meta=("split", "object"))).compute()
    stats = TableStats(
        images=int(images.shape[0].compute()), ok_images=int(per_image["count"]),
        errors={k: int(v) for k, v in images["error"].dropna().value_counts().compute().sort_index().items()},
        masks=int(masks.shape[0].compute()),
        masks_per_image={k: round(float(per_image[k]), 3) for k in ("mean", "std", "min", "50%", "max")},
        granularity_hist=_hist(g.to_dask_array(lengths=True), G_BINS),
        area_hist=_hist(masks["rel_area"].to_dask_array(lengths=True), AREA_BINS),
        origins={k: int(v) for k, v in masks["origin"].value_counts().compute().sort_index().items()},
        split={k: int(v) for k, v in split["split"].value_counts().sort_index().items()},
    )
    _write_outputs(stats, split, out_uri)
    return stats


def _write_outputs(stats: TableStats, split: pd.DataFrame, out_uri: str) -> None:
    storage.makedirs(out_uri)
    storage.write_text(storage.join(out_uri, "stats.json"), json.dumps(asdict(stats), indent=2))
    table = pa.table({"image_id": split["image_id"].to_numpy(dtype=np.int64), "split": split["split"].tolist()})
    buf = io.BytesIO()
    pq.write_table(table.sort_by("image_id"), buf)
    storage.write_bytes(storage.join(out_uri, "split.parquet"), buf.getvalue())
    storage.write_bytes(storage.join(out_uri, "stats.png"), plot_stats(stats))


def read_split(out_uri: str) -> dict[str, set[int]]:
    """The split written by :func:`compute_stats`: {"train": ids, "val": ids}."""
    fs, path = storage.filesystem(storage.join(out_uri, "split.parquet"))
    t = pq.read_table(path, filesystem=fs)
    out: dict[str, set[int]] = {"train": set(), "val": set()}
    for i, s in zip(t["image_id"].to_pylist(), t["split"].to_pylist(), strict=True):
        out[s].add(i)
    return out


def plot_stats(stats: TableStats) -> bytes:
    """A 2×2 PNG: granularity histogram, area distribution, origins, errors by reason."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(10, 7))
    gh, ah = stats.granularity_hist, stats.area_hist
    ax[0, 0].bar(np.array(gh["edges"][:-1]) + 0.05, gh["counts"], width=0.09, color="#4C72B0")
    ax[0, 0].set(title="granularity of mined masks", xlabel="g", ylabel="masks")
    labels = [f"{e:.0e}" for e in ah["edges"][1:]]
    ax[0, 1].bar(range(len(ah["counts"])), ah["counts"], color="#55A868", tick_label=labels)
    ax[0, 1].set(title="mask area (fraction of image, upper bin edge)", ylabel="masks")
    ax[0, 1].tick_params(axis="x", rotation=45)
    ax[1, 0].bar(list(stats.origins), list(stats.origins.values()), color="#C44E52")
    ax[1, 0].set(title=f"origins ({stats.masks} masks, {stats.masks_per_image['mean']:.1f}/image)")
    errs = stats.errors or {"none": 0}
    ax[1, 1].barh(list(errs), list(errs.values()), color="#8172B2")
    ax[1, 1].set(title=f"errors ({stats.images - stats.ok_images} of {stats.images} images)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
