"""``unsamv2 train``: fine-tune the granularity adapter on a mask table (locally or with Ray Train);
``unsamv2 pretrain``: train a SAM-2 base from scratch with SAM-2's supervised recipe (same flags)."""

from __future__ import annotations

import argparse
import json
from typing import Any, cast

from unsamv2.backends.ray_train import RayTrainOptions
from unsamv2.jobs.fields import Flag, add_flags, given
from unsamv2.jobs.train import TRAIN_BACKENDS, TrainBackend
from unsamv2.train.config import PRETRAIN_DEFAULTS, TrainConfig

# TrainConfig fields as flags (names, types, choices and defaults from the fields, see
# unsamv2/jobs/fields.py). They default to "not given", so that only the flags given override the
# --config-file values, then the command's defaults (TrainConfig's, or PRETRAIN_DEFAULTS).
CONFIG_FLAGS = (
    Flag("split_uri", "folder with split.parquet (default: TABLE/stats)", aliases=("--split",)),
    Flag("use_split", "train on every ok image (no train/val split)", aliases=("--no-split",)),
    Flag("model_config", "model config: base (the shipped pretrained base), sam2.1_hiera_s, ..., tiny, or a "
                         "YAML path", aliases=("--config",)),
    Flag("base_checkpoint", "SAM-2.1 / UnSAMv2 checkpoint to start from (local or s3://)", aliases=("--checkpoint",)),
    Flag("init_adapter", "adapter file to start from, or 'shipped' (the shipped UnSAMv2 adapter)",
         aliases=("--adapter",)),
    Flag("trainable", "adapter (the paper: only the granularity module) or full (every weight)"),
    Flag("max_steps", "optimizer steps", aliases=("--steps",)),
    Flag("warmup_steps", "steps of linear lr warm-up before the cosine"),
    Flag("batch_size", "images per step and worker (4: the reference's effective batch)"),
    Flag("max_masks_per_image", "masks sampled per image", aliases=("--max-masks",)),
    Flag("box_prompt_prob", "pretrain: chance a step starts from boxes, not clicks", aliases=("--box-prob",)),
    Flag("min_mask_area", "skip masks below this fraction of the image"),
    Flag("correction_clicks", "correction clicks after the first", aliases=("--clicks",)),
    Flag("lr", "peak learning rate"),
    Flag("min_lr", "final learning rate of the cosine"),
    Flag("weight_decay", "AdamW weight decay (not on biases and LayerNorms, as SAM-2)"),
    Flag("encoder_lr_scale", "image encoder lr as a fraction of --lr (SAM-2's vision_lr / base_lr)"),
    Flag("weight_focal", "weight of the focal loss (dice, IoU and object: 1)"),
    Flag("grad_clip", "clip the gradients' global L2 norm (0: off)"),
    Flag("nan_patience", "non-finite steps in a row skipped before training stops (0: stop at the first)"),
    Flag("seed", "seed of data order, augmentation, clicks and dropout"),
    Flag("device", "auto (cuda when available), cpu or cuda"),
    Flag("precision", "auto (bf16 on CUDA), fp32 or bf16"),
    Flag("checkpoint_every", "steps between checkpoints"),
    Flag("keep_checkpoints", "newest checkpoints kept, 0 = all"),
    Flag("val_images", "held-out images for the final validation"),
    Flag("human_coco_uri", "COCO annotations of human masks to mix in (UnSAMv2+)", aliases=("--human-coco",)),
    Flag("human_image_root", "folder the human COCO file names are relative to"),
    Flag("human_fraction", "fraction of images taken from --human-coco-uri"),
)
# Where it runs with --backend ray: RayTrainOptions fields.
RAY_FLAGS = (
    Flag("workers", "Ray Train workers (DDP)"),
    Flag("cpus_per_worker", "CPUs per Ray Train worker"),
    Flag("gpus_per_worker", "GPUs per Ray Train worker (default: 1 when the cluster has GPUs, else 0)"),
    Flag("ray_address", "existing Ray cluster (default: start a local Ray)"),
    Flag("run_name", "Ray Train run name (default from the config hash)"),
    Flag("storage_path", "Ray Train storage (default OUT/ray)"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune the granularity adapter on a mask table",
                       description="Train on the (mask, g) pairs of a mask table with 1 + 3 simulated clicks "
                                   "per mask (docs/architecture.md#training). Checkpoints go to OUT/checkpoints; --resume "
                                   "continues a run exactly. --backend ray runs DDP on Ray Train workers. "
                                   "Older flag names (--steps, --config, --checkpoint, ...) still work.")
    _add_arguments(p, {})
    p.set_defaults(func=_train, defaults={})
    q = sub.add_parser("pretrain", help="train a SAM-2 base from scratch on human masks (SAM-2's recipe)",
                       description="SAM-2's supervised interactive training of every weight of a plain SAM-2 "
                                   "(no granularity module): first click multimask, best-of-3 loss, correction "
                                   "clicks from the error region. TABLE holds human masks (e.g. 'unsamv2 table "
                                   "import-coco' of the scenes' ground truth). Defaults: "
                                   + ", ".join(f"{k}={v}" for k, v in PRETRAIN_DEFAULTS.items()).replace("%", "%%")
                                   + ". The result OUT/checkpoints/step-*/sam2.pt is an official-layout SAM-2 "
                                   "checkpoint every command accepts as --base-checkpoint.")
    _add_arguments(q, PRETRAIN_DEFAULTS)
    q.set_defaults(func=_train, defaults=PRETRAIN_DEFAULTS)


def _add_arguments(p: argparse.ArgumentParser, overrides: dict[str, Any]) -> None:
    p.add_argument("table_uri", metavar="TABLE", nargs="?", help="mask table root: folder or s3:// prefix")
    p.add_argument("output_uri", metavar="OUT", nargs="?",
                   help="run folder or s3:// prefix (checkpoints, summary.json, loss.png)")
    p.add_argument("--config-file", default=None, help="JSON TrainConfig (flags given here override it)")
    add_flags(p, TrainConfig, CONFIG_FLAGS, overrides=overrides, unset=True)
    p.add_argument("--no-augment", action="store_true", help="turn augmentation off (augment.enabled=false)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's latest checkpoint if there is one")
    p.add_argument("--backend", default="local", choices=TRAIN_BACKENDS, help="train here or on Ray Train workers")
    add_flags(p.add_argument_group("Ray Train (--backend ray)"), RayTrainOptions, RAY_FLAGS)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the parsed arguments: the command's defaults, then the config file, then
    the flags given."""
    from unsamv2.data import storage
    from unsamv2.errors import InputError

    values: dict[str, Any] = dict(getattr(args, "defaults", {}) or {})
    if args.config_file:
        try:
            values.update(json.loads(storage.read_text(args.config_file)))
        except json.JSONDecodeError as exc:
            raise InputError(f"{args.config_file} is not valid JSON ({exc.msg}); give a TrainConfig JSON file.") from exc
    for key in ("table_uri", "output_uri"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    values.update(given(args, CONFIG_FLAGS))
    if args.no_augment:
        values["augment"] = {**values.get("augment", {}), "enabled": False}
    if "table_uri" not in values or "output_uri" not in values:
        raise InputError("give TABLE and OUT (or a --config-file that names table_uri and output_uri).")
    return TrainConfig.from_dict(values)


def build_ray_options(args: argparse.Namespace) -> RayTrainOptions:
    """The RayTrainOptions of the parsed arguments (used with --backend ray)."""
    return RayTrainOptions(**given(args, RAY_FLAGS))


def _train(args: argparse.Namespace) -> int:
    config = build_config(args)
    options = build_ray_options(args)
    _print_summary(_run(config, cast(TrainBackend, args.backend), options, args.resume))
    return 0


def _run(config: TrainConfig, backend: TrainBackend, options: RayTrainOptions, resume: bool) -> dict[str, Any]:
    """:func:`unsamv2.jobs.train.run_train` with a progress bar for a local run."""
    from tqdm import tqdm

    from unsamv2.jobs.train import run_train

    bar: list[Any] = []

    def progress(log: Any) -> None:
        if not bar:
            bar.append(tqdm(total=log.max_steps, initial=log.step - 1, desc="train", unit="step"))
        bar[0].update(1)
        bar[0].set_postfix(loss=f"{log.losses['total']:.3f}", lr=f"{log.lr:.2e}", masks=log.masks)

    try:
        return run_train(config, backend=backend, ray=options, resume=resume, on_step=progress)
    finally:
        if bar:
            bar[0].close()


def _print_summary(result: dict[str, Any]) -> None:
    from unsamv2.data import storage

    losses = result["losses"]
    val = result.get("val") or {}
    first = f"{losses[0]:.3f} -> " if len(losses) > 1 else ""
    if result["start_step"] >= result["steps"]:
        line = f"nothing to train: already at step {result['steps']}"
    else:
        line = (f"trained steps {result['start_step']}..{result['steps']} in {result['seconds']:.1f} s "
                f"({result['masks_per_second']:.1f} masks/s, {result['world_size']} worker(s)); loss {first}"
                f"{losses[-1]:.3f}")
    if "val_iou_click1" in val:
        line += f"; held-out IoU after 1 click {val['val_iou_click1']:.3f}"
    print(line)
    print(f"checkpoint  {result['checkpoint_uri']}")
    if result["adapter_uri"]:
        print(f"adapter     {result['adapter_uri']}")
    if result.get("model_uri"):
        print(f"weights     {result['model_uri']}")
    print(f"summary     {storage.join(result['output_uri'], 'summary.json')} (loss curve: loss.png)")
