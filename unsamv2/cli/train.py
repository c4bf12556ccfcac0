"""``unsamv2 train``: fine-tune the granularity adapter on a mask table (locally or with Ray Train);
``unsamv2 pretrain``: train a SAM-2 base from scratch with SAM-2's supervised recipe (same flags)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from unsamv2.train.config import PRETRAIN_DEFAULTS

# (flag, TrainConfig field, type, help); every default is None so that only given flags override
# the --config-file values and the TrainConfig defaults.
_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--split", "split_uri", str, "folder with split.parquet (default: TABLE/stats)"),
    ("--config", "model_config", str, "model config: base (the shipped pretrained base, default), sam2.1_hiera_s, ..., tiny, or a YAML path"),
    ("--checkpoint", "base_checkpoint", str, "SAM-2.1 / UnSAMv2 checkpoint to start from (local or s3://)"),
    ("--adapter", "init_adapter", str, "adapter file to start from"),
    ("--trainable", "trainable", str, "adapter (the paper, default) or full (every weight; the tiny demo model)"),
    ("--steps", "max_steps", int, "optimizer steps (default 1000)"),
    ("--warmup-steps", "warmup_steps", int, "steps of linear lr warm-up before the cosine (default 0)"),
    ("--batch-size", "batch_size", int, "images per step and worker (default 4, the reference's effective batch)"),
    ("--max-masks", "max_masks_per_image", int, "masks sampled per image (default 30)"),
    ("--box-prob", "box_prompt_prob", float, "pretrain: chance a step starts from boxes, not clicks (default 0.5)"),
    ("--min-mask-area", "min_mask_area", float, "skip masks below this fraction of the image (default 0)"),
    ("--clicks", "correction_clicks", int, "correction clicks after the first (default 3)"),
    ("--lr", "lr", float, "peak learning rate (default 1e-4)"),
    ("--min-lr", "min_lr", float, "final learning rate of the cosine (default 1e-5)"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay (default 1e-5)"),
    ("--weight-focal", "weight_focal", float, "weight of the focal loss (default 20; dice, IoU and object: 1)"),
    ("--grad-clip", "grad_clip", float, "clip the gradients' global L2 norm (default 0: off)"),
    ("--nan-patience", "nan_patience", int, "non-finite steps in a row skipped before training stops "
                                            "(default 0: stop at the first)"),
    ("--seed", "seed", int, "seed of data order, augmentation, clicks and dropout (default 0)"),
    ("--device", "device", str, "auto (default), cpu or cuda"),
    ("--precision", "precision", str, "auto (bf16 on CUDA, default), fp32 or bf16"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints (default 500)"),
    ("--keep-checkpoints", "keep_checkpoints", int, "newest checkpoints kept, 0 = all (default 3)"),
    ("--val-images", "val_images", int, "held-out images for the final validation (default 8)"),
    ("--human-coco", "human_coco_uri", str, "COCO annotations of human masks to mix in (UnSAMv2+)"),
    ("--human-image-root", "human_image_root", str, "folder the human COCO file names are relative to"),
    ("--human-fraction", "human_fraction", float, "fraction of images taken from --human-coco"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune the granularity adapter on a mask table",
                       description="Train on the (mask, g) pairs of a mask table with 1 + 3 simulated clicks "
                                   "per mask (docs/architecture.md#training). Checkpoints go to OUT/checkpoints; --resume "
                                   "continues a run exactly. --backend ray runs DDP on Ray Train workers.")
    _add_arguments(p)
    p.set_defaults(func=_train, defaults={})
    q = sub.add_parser("pretrain", help="train a SAM-2 base from scratch on human masks (SAM-2's recipe)",
                       description="SAM-2's supervised interactive training of every weight of a plain SAM-2 "
                                   "(no granularity module): first click multimask, best-of-3 loss, correction "
                                   "clicks from the error region. TABLE holds human masks (e.g. 'unsamv2 table "
                                   "import-coco' of the scenes' ground truth). Defaults: "
                                   + ", ".join(f"{k}={v}" for k, v in PRETRAIN_DEFAULTS.items())
                                   + ". The result OUT/checkpoints/step-*/sam2.pt is an official-layout SAM-2 "
                                   "checkpoint every command accepts as --checkpoint.")
    _add_arguments(q)
    q.set_defaults(func=_train, defaults=PRETRAIN_DEFAULTS)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="?", help="mask table root: folder or s3:// prefix")
    p.add_argument("output", nargs="?", help="run folder or s3:// prefix (checkpoints, summary.json, loss.png)")
    p.add_argument("--config-file", default=None, help="JSON TrainConfig (flags given here override it)")
    for flag, dest, kind, text in _OPTIONS:
        p.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    p.add_argument("--no-split", dest="use_split", action="store_false", default=None,
                   help="train on every ok image (no train/val split)")
    p.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    p.add_argument("--resume", action="store_true", help="continue from OUT's latest checkpoint if there is one")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--workers", type=int, default=1, help="Ray Train workers (DDP), default 1")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--gpus-per-worker", type=float, default=None,
                   help="GPUs per Ray Train worker (default: 1 when the cluster has GPUs, else 0)")
    p.add_argument("--ray-address", default=None, help="existing Ray cluster (default: start a local Ray)")
    p.add_argument("--run-name", default=None, help="Ray Train run name (default from the config hash)")
    p.add_argument("--storage-path", default=None, help="Ray Train storage (default OUT/ray)")


def build_config(args: argparse.Namespace) -> Any:
    """The TrainConfig of the parsed arguments (file values, then flags)."""
    from unsamv2.data import storage
    from unsamv2.errors import InputError
    from unsamv2.train.config import TrainConfig

    values: dict[str, Any] = dict(getattr(args, "defaults", {}) or {})
    if args.config_file:
        try:
            values.update(json.loads(storage.read_text(args.config_file)))
        except json.JSONDecodeError as exc:
            raise InputError(f"{args.config_file} is not valid JSON ({exc.msg}); give a TrainConfig JSON file.") from exc
    for key, value in (("table_uri", args.table), ("output_uri", args.output)):
        if value is not None:
            values[key] = value
    for _, dest, _, _ in _OPTIONS:
        if getattr(args, dest) is not None:
            values[dest] = getattr(args, dest)
    if args.use_split is not None:
        values["use_split"] = args.use_split
    if args.no_augment:
        values["augment"] = {**values.get("augment", {}), "enabled": False}
    if "table_uri" not in values or "output_uri" not in values:
        raise InputError("give TABLE and OUT (or a --config-file that names table_uri and output_uri).")
    return TrainConfig.from_dict(values)


def _train(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.backend == "ray":
        from unsamv2.backends.ray_train import RayTrainOptions, run_ray_train

        options = RayTrainOptions(address=args.ray_address, workers=args.workers,
                                  cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
                                  name=args.run_name, storage_path=args.storage_path)
        result = run_ray_train(config, options, resume=args.resume)
    else:
        result = _train_locally(config, args.resume)
    _print_summary(result)
    return 0


def _train_locally(config: Any, resume: bool) -> dict[str, Any]:
    from dataclasses import asdict

    from tqdm import tqdm

    from unsamv2.train import train

    bar: list[Any] = []

    def progress(log: Any) -> None:
        if not bar:
            bar.append(tqdm(total=log.max_steps, initial=log.step - 1, desc="train", unit="step"))
        bar[0].update(1)
        bar[0].set_postfix(loss=f"{log.losses['total']:.3f}", lr=f"{log.lr:.2e}", masks=log.masks)

    try:
        return asdict(train(config, resume=resume, on_step=progress))
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
