"""The training recipe (docs/architecture.md#training): setup -> loop -> checkpoint -> cleanup, in one place.

    from unsamv2.train import TrainConfig, train
    result = train(TrainConfig(table_uri="runs/demo/mask_table", output_uri="runs/train"), resume=True)

One process trains alone; several processes in a ``torch.distributed`` group (Ray Train's
``TorchTrainer``, ``torchrun``) train one model with DistributedDataParallel, each on its share
of every step's images. Rank 0 writes the checkpoints (:mod:`unsamv2.train.checkpoint`) every
``checkpoint_every`` steps and at the end, then ``summary.json`` and ``loss.png``.

Exact resume: a checkpoint stores the weights, AdamW and scheduler states, every worker's RNG
states (global torch RNG for dropout, CUDA RNG, the click generator), the data position and the
loss history; a resumed run continues with the same parameters and losses as a run that was
never interrupted (same world size; tests check it bit for bit on CPU).

Divergence: a step whose loss or gradient is not finite skips its update; more than
``nan_patience`` in a row stop the run with :class:`~unsamv2.train.guard.TrainingDivergedError`,
and no checkpoint is ever written from non-finite weights (:mod:`unsamv2.train.guard`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from unsamv2.data import storage
from unsamv2.errors import InputError
from unsamv2.model.build import config_sha256
from unsamv2.train import dist
from unsamv2.train.checkpoint import (
    is_complete,
    latest_checkpoint,
    load_weights,
    mark_latest,
    read_checkpoint,
    save_checkpoint,
    step_dir,
    step_folders,
)
from unsamv2.train.config import TrainConfig
from unsamv2.train.guard import NonFiniteGuard, check_finite_weights, finite_gradients
from unsamv2.train.loader import LoaderPosition, Prefetcher, TrainLoader
from unsamv2.train.losses import LossWeights, interactive_loss
from unsamv2.train.schedule import cosine_factor, derive_seed
from unsamv2.train.validation import heldout_metrics

log = logging.getLogger(__name__)

# Fields that may differ between a checkpoint and the run resuming from it.
RESUMABLE_CHANGES = ("output_uri", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every",
                     "device", "val_images", "nan_patience")


@dataclass(frozen=True)
class StepLog:
    """What one optimizer step reports: ``losses`` (total and terms, averaged over workers)."""

    step: int
    max_steps: int
    losses: dict[str, float]
    lr: float
    masks: int
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train` (also written as ``summary.json``)."""

    output_uri: str
    checkpoint_uri: str
    adapter_uri: str
    model_uri: str | None
    start_step: int
    steps: int
    losses: list[float]
    val: dict[str, float]
    seconds: float
    masks_per_second: float
    trainable_parameters: int
    world_size: int
    config_hash: str


@dataclass
class _Run:
    """Everything the loop touches (built by :func:`_setup`)."""

    config: TrainConfig
    model: Any
    loop: Any  # ClickLoop, or DDP(ClickLoop)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: TrainLoader
    clicks: torch.Generator
    device: torch.device
    autocast: Callable[[], Any]
    rank: int
    world: int
    step: int = 0
    start_step: int = 0
    position: LoaderPosition = field(default_factory=LoaderPosition)
    losses: list[float] = field(default_factory=list)
    masks_seen: int = 0
    start_masks: int = 0
    resumed_metrics: dict[str, float] = field(default_factory=dict)
    batches: Prefetcher | None = None
    last_checkpoint: str = ""
    guard: NonFiniteGuard = field(default_factory=NonFiniteGuard)


def train(config: TrainConfig, *, resume: bool | str = False,
          on_step: Callable[[StepLog], None] | None = None,
          on_checkpoint: Callable[[str | None, int, dict[str, Any]], None] | None = None) -> TrainResult:
    """Run the recipe. ``resume``: False (fresh; refuses an output that has checkpoints), True
    (continue from the output's latest checkpoint if there is one) or a checkpoint folder URI.
    ``on_step(StepLog)`` after every step; ``on_checkpoint(uri or None off rank 0, step, metrics)``
    after every checkpoint, on every worker."""
    run = _setup(config, resume)
    try:
        if run.step >= config.max_steps:  # a finished run resumed: its last checkpoint is the result
            return _finish(run, run.resumed_metrics, 0.0)
        run.batches = Prefetcher(run.loader.batches(run.position))
        started = time.perf_counter()
        while run.step < config.max_steps:
            batch, position = next(run.batches)
            losses = _train_step(run, batch)
            run.step, run.position = run.step + 1, position
            run.losses.append(losses["total"])
            if on_step is not None:
                on_step(StepLog(run.step, config.max_steps, losses, run.scheduler.get_last_lr()[0],
                                batch.num_objects, time.perf_counter() - started))
            if run.step % config.log_every == 0:
                log.info("step %d/%d loss %.4f", run.step, config.max_steps, losses["total"])
            if run.step % config.checkpoint_every == 0 and run.step < config.max_steps:
                _checkpoint(run, {"loss": losses["total"]}, on_checkpoint)
        seconds = time.perf_counter() - started
        val = _validate(run) if run.rank == 0 else {}
        _checkpoint(run, {"loss": run.losses[-1], **val}, on_checkpoint)
        return _finish(run, val, seconds)
    finally:
        _cleanup(run)


# ------------------------------------------------------------------------------------ setup
def _setup(config: TrainConfig, resume: bool | str) -> _Run:
    from unsamv2.model.adapter import set_trainable
    from unsamv2.model.build import build_model
    from unsamv2.train.interactive import ClickLoop
    from unsamv2.train.optim import param_groups

    rank, world = dist.rank_and_world()
    device = _device(config.device)
    torch.manual_seed(derive_seed(config.seed, rank, 0))
    clicks = torch.Generator().manual_seed(derive_seed(config.seed, rank, 1))
    loop: torch.nn.Module
    if config.objective == "sam2":
        from unsamv2.model.build import build_sam2
        from unsamv2.train.sam2_loop import Sam2ClickLoop

        model = build_sam2(config.model_config, checkpoint=config.base_checkpoint, device=str(device),
                           seed=derive_seed(config.seed, 0), pretrained=False)
        model.requires_grad_(True)
        loop = Sam2ClickLoop(model, config.correction_clicks, box_prob=config.box_prompt_prob)
    else:
        model = build_model(config.model_config, checkpoint=config.base_checkpoint, adapter=config.init_adapter,
                            device=str(device), warn_untrained=False)
        set_trainable(model, config.trainable)
        loop = ClickLoop(model, config.correction_clicks, train_encoder=config.trainable == "full")
    model.train()
    if dist.active():
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        loop = DistributedDataParallel(loop, device_ids=ids, find_unused_parameters=True)
    optimizer = torch.optim.AdamW(param_groups(model, config.lr, config.weight_decay, config.encoder_lr_scale),
                                  lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(config))
    human = _human_table(config, rank)
    loader = TrainLoader(config, model.image_size, rank, world, human_table_uri=human)
    run = _Run(config, model, loop, optimizer, scheduler, loader, clicks, device,
               _autocast(config, device), rank, world, guard=NonFiniteGuard(config.nan_patience))
    uri = dist.broadcast_from_main(_resume_uri(config, resume) if rank == 0 else None)
    if uri is not None:
        _restore(run, uri)
    return run


def _device(name: str) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for but CUDA is not available; use --device cpu.")
    return torch.device("cuda", torch.cuda.current_device())


def _autocast(config: TrainConfig, device: torch.device) -> Callable[[], Any]:
    bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _human_table(config: TrainConfig, rank: int) -> str | None:
    if config.human_fraction <= 0:
        return None
    from unsamv2.train.supervision import human_mask_table

    uri = storage.join(config.output_uri, "human_table")
    if rank == 0:
        assert config.human_coco_uri is not None  # TrainConfig requires it when human_fraction > 0
        human_mask_table(config.human_coco_uri, uri, image_root=config.human_image_root)
    dist.barrier()
    return uri


def _resume_uri(config: TrainConfig, resume: bool | str) -> str | None:
    """The checkpoint to resume from: the given folder, the newest valid one (``resume=True``) or none."""
    if isinstance(resume, str):
        return resume
    if not resume:
        complete = [uri for _, uri in sorted(step_folders(config.output_uri).items()) if is_complete(uri)]
        if complete:
            raise InputError(f"{config.output_uri} already holds checkpoints (latest {complete[-1]}); pass --resume "
                             "to continue that run or choose a new output folder.")
        return None
    latest = latest_checkpoint(config.output_uri)
    if latest is None and step_folders(config.output_uri):
        log.warning("%s has no valid checkpoint to resume from; training starts at step 0", config.output_uri)
    return latest


def _restore(run: _Run, uri: str) -> None:
    payload = read_checkpoint(uri, map_location="cpu")
    saved = payload.meta.get("config", {})
    now = run.config.to_dict()
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
    if changed:
        raise InputError(f"checkpoint {uri} was trained with other settings ({', '.join(changed)}); resume with "
                         "the same settings or start a new output folder.")
    load_weights(run.model, uri)
    state = payload.state
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    # the learning rate of the next step follows this run's schedule (max_steps may have changed)
    factor = cosine_factor(run.config)(payload.step)
    for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs, strict=True):
        group["lr"] = base * factor
    run.scheduler._last_lr = [group["lr"] for group in run.optimizer.param_groups]
    run.step = run.start_step = payload.step
    run.position = LoaderPosition.from_dict(state["position"])
    run.losses = [float(v) for v in state["losses"]]
    run.masks_seen = run.start_masks = int(state.get("masks_seen", 0))
    run.guard.streak = int(state.get("nonfinite_streak", 0))
    run.last_checkpoint = uri
    run.resumed_metrics = {k: float(v) for k, v in payload.meta.get("metrics", {}).items()
                           if k.startswith("val_")}
    rngs = state["rng"]
    if len(rngs) == run.world:
        _set_rng_state(run, rngs[run.rank])
    else:
        log.warning("checkpoint %s has RNG states of %d workers, this run has %d: reseeding (the run "
                    "continues, but not bit-identically)", uri, len(rngs), run.world)
        torch.manual_seed(derive_seed(run.config.seed, run.rank, payload.step))
        run.clicks.manual_seed(derive_seed(run.config.seed, run.rank, payload.step, 1))
    log.info("resumed from %s at step %d", uri, payload.step)


def _rng_state(run: _Run) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "clicks": run.clicks.get_state()}
    if run.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(run.device)
    return state


def _set_rng_state(run: _Run, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    run.clicks.set_state(state["clicks"])
    if run.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], run.device)


# ------------------------------------------------------------------------------------ loop
def _train_step(run: _Run, batch: Any) -> dict[str, float]:
    """One optimizer step on this worker's batch; losses averaged over workers."""
    cfg = run.config
    batch = batch.to(run.device)
    num_objects = max(dist.mean_over_workers(batch.num_objects, run.device), 1.0)
    with run.autocast():
        steps = run.loop(batch.images, batch.masks, batch.granularity, batch.counts, run.clicks)
    losses = interactive_loss(steps, batch.masks, num_objects, loss_weights(cfg))
    run.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    means = {k: dist.mean_over_workers(float(v.detach()), run.device) for k, v in losses.items()}
    # every worker sees the same mean loss and all-reduced gradients: they all decide alike
    if run.guard.observe(run.step + 1, math.isfinite(means["total"]) and finite_gradients(params),
                         run.last_checkpoint):
        run.optimizer.step()
    run.scheduler.step()  # a skipped step still counts: the schedule follows the step number
    run.masks_seen += batch.num_objects
    return means


def loss_weights(config: TrainConfig) -> LossWeights:
    """The loss weights and focal parameters of a config."""
    return LossWeights(config.weight_focal, config.weight_dice, config.weight_iou, config.weight_object,
                       config.focal_alpha, config.focal_gamma)


def _validate(run: _Run) -> dict[str, float]:
    """Loss and IoU after click 1 (best of 3 for base pretraining) / after the last click on the
    held-out images (rank 0, eval mode, fixed clicks, no augmentation)."""
    batches = run.loader.val_batches(run.config.val_images)
    if not batches:
        return {}
    module = run.loop.module if hasattr(run.loop, "module") else run.loop
    clicks = torch.Generator().manual_seed(derive_seed(run.config.seed, 2**31))
    return heldout_metrics(module, run.model, batches, loss_weights(run.config), clicks, run.device, run.autocast)


# ------------------------------------------------------------------------------------ checkpoint
def _checkpoint(run: _Run, metrics: dict[str, Any],
                on_checkpoint: Callable[[str | None, int, dict[str, Any]], None] | None) -> None:
    from unsamv2.model.adapter import trainable_parameters

    check_finite_weights(trainable_parameters(run.model), run.step, run.last_checkpoint)
    rngs = dist.gather_to_main(_rng_state(run))
    uri = None
    if run.rank == 0:
        state = {"step": run.step, "position": run.position.to_dict(), "losses": list(run.losses),
                 "masks_seen": run.masks_seen, "nonfinite_streak": run.guard.streak,
                 "optimizer": run.optimizer.state_dict(),
                 "scheduler": run.scheduler.state_dict(), "rng": rngs}
        meta = {"step": run.step, "config": run.config.to_dict(), "config_hash": run.config.config_hash(),
                "model_config_sha256": config_sha256(run.config.model_config),
                "trainable": run.config.trainable, "world_size": run.world, "metrics": metrics}
        uri = save_checkpoint(step_dir(run.config.output_uri, run.step), run.model,
                              full_weights=run.config.trainable == "full", state=state, meta=meta,
                              sam2_layout=run.config.objective == "sam2")
        mark_latest(run.config.output_uri, uri, run.step, run.config.keep_checkpoints)
        run.last_checkpoint = uri
        log.info("checkpoint %s", uri)
    dist.barrier()
    if on_checkpoint is not None:
        on_checkpoint(uri, run.step, metrics)


# ------------------------------------------------------------------------------------ cleanup
def _finish(run: _Run, val: dict[str, float], seconds: float) -> TrainResult:
    """The result (``seconds``: time in the loop; throughput counts every worker's masks)."""
    from unsamv2.model.adapter import trainable_parameters
    from unsamv2.train.checkpoint import ADAPTER_FILE, MODEL_FILE, SAM2_FILE

    ckpt = dist.broadcast_from_main(run.last_checkpoint)
    new_masks = dist.mean_over_workers(run.masks_seen - run.start_masks, run.device) * run.world
    sam2 = run.config.objective == "sam2"
    model_file = SAM2_FILE if sam2 else MODEL_FILE
    result = TrainResult(
        output_uri=run.config.output_uri, checkpoint_uri=ckpt,
        adapter_uri="" if sam2 else storage.join(ckpt, ADAPTER_FILE),
        model_uri=storage.join(ckpt, model_file) if run.config.trainable == "full" else None,
        start_step=run.start_step, steps=run.step, losses=list(run.losses), val=val, seconds=round(seconds, 3),
        masks_per_second=round(new_masks / seconds, 3) if seconds > 0 else 0.0,
        trainable_parameters=sum(p.numel() for p in trainable_parameters(run.model).values()),
        world_size=run.world, config_hash=run.config.config_hash())
    if run.rank == 0:
        from unsamv2.train.summary import write_summary

        write_summary(result)
    return result


def _cleanup(run: _Run) -> None:
    if run.batches is not None:
        run.batches.close()


def result_to_dict(result: TrainResult) -> dict[str, Any]:
    """A JSON-ready dict of a :class:`TrainResult`."""
    return asdict(result)
