"""``unsamv2 eval``: the nightly evaluation from a shell (same steps as the ``nightly-eval`` flow)."""

from __future__ import annotations

import argparse

from unsamv2.eval.checkpoint import EvalJob
from unsamv2.jobs.fields import Flag, add_flags, given

# EvalJob fields as flags (names, types and defaults from the fields, see unsamv2/jobs/fields.py).
JOB_FLAGS = (
    Flag("scenes", "procedural benchmark scenes:<n>:<seed>:<size>, or 'none'"),
    Flag("datasets", "COCO annotations JSON (repeatable)", repeat="dataset"),
    Flag("policies", "oracle, g=<value>, sam2-single or sam2-best3 (repeatable)", repeat="policy"),
    Flag("baseline_checkpoint", "SAM-2 checkpoint of the sam2-* policies (default: the one the adapter was "
                                "trained on)"),
    Flag("whole_image", "also whole-image AR (masks at all 10 g, the official protocol: m2m pass, 64x64 grid)"),
    Flag("points_per_side", "whole-image grid (official: 64; slow on CPU, 16 for a quick look; in the protocol "
                            "hash)"),
    Flag("m2m", "whole-image: skip the mask-to-mask second pass (not the official protocol; in the hash)"),
    Flag("max_clicks", "clicks per object at most"),
    Flag("max_objects", "objects per image and dataset at most (default: all)"),
    Flag("probe", "skip the one-click granularity probe on the scenes (probe.json)"),
    Flag("device", "cpu, cuda or auto (cuda when --gpus > 0 and cpu was left)"),
    Flag("ray_address", "run the evaluation as a Ray task on this cluster (e.g. auto) instead of in this process"),
    Flag("gpus", "GPUs the Ray task reserves (with --ray-address)"),
    Flag("history_uri", "report store with history.parquet (enables regression checks)", aliases=("--store",)),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint with the paper's protocol; report, history, regressions",
                       description="Evaluate a training checkpoint folder (or the newest in --registry) on the "
                                   "procedural benchmark and COCO-format datasets; write report.json/.md/.html; "
                                   "with --history-uri (--store), compare with the history there and append the run.")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="training checkpoint folder (checkpoints/step-*), or 'shipped' for the shipped UnSAMv2")
    p.add_argument("--registry", default=None, help="take the newest checkpoint under this folder / s3:// prefix")
    p.add_argument("--out", required=True, help="report folder or s3:// prefix")
    add_flags(p, EvalJob, JOB_FLAGS)
    p.add_argument("--fail-on-regression", action="store_true", help="exit with status 1 on a regression")
    p.set_defaults(func=_eval)


def build_job(args: argparse.Namespace) -> EvalJob:
    """The EvalJob of the parsed arguments (validated: one sentence per bad value)."""
    return EvalJob(**given(args, JOB_FLAGS))


def _eval(args: argparse.Namespace) -> int:
    """Evaluate, print the key metrics and the verdict; 1 on a regression with --fail-on-regression."""
    from unsamv2.eval.checkpoint import run_eval
    from unsamv2.eval.registry import resolve_checkpoint

    job = build_job(args)
    checkpoint = resolve_checkpoint(args.checkpoint, args.registry)
    if job.ray_address:
        print(f"evaluating as a Ray task on {job.ray_address} with {job.gpus:g} GPU(s)", flush=True)
    result = run_eval(job, checkpoint, args.out, progress=True)
    for key in sorted(result.metrics):
        if key.endswith(("NoC80", "NoC85", "NoC90", "1-IoU", "AR1000")):
            print(f"  {key:<40} {result.metrics[key]:.4g}")
    print(f"evaluated {checkpoint}; report {result.files['html']}"
          + (f"; {result.summary}" if result.verdict is not None else ""))
    return 1 if (args.fail_on_regression and result.regressed) else 0
