"""``unsamv2 eval``: the nightly evaluation from a shell (same steps as the ``nightly-eval`` flow)."""

from __future__ import annotations

import argparse

from unsamv2.eval.checkpoint import DEFAULT_SCENES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint with the paper's protocol; report, history, regressions",
                       description="Evaluate a training checkpoint folder (or the latest in --registry) on the "
                                   "procedural benchmark and COCO-format datasets; write report.json/.md/.html; "
                                   "with --store, compare with the history there and append the run.")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="training checkpoint folder (checkpoints/step-*), or 'shipped' for the shipped UnSAMv2")
    p.add_argument("--registry", default=None, help="take the latest checkpoint under this folder / s3:// prefix")
    p.add_argument("--out", required=True, help="report folder or s3:// prefix")
    p.add_argument("--store", default=None, help="report store with history.parquet (enables regression checks)")
    p.add_argument("--scenes", default=DEFAULT_SCENES, help="procedural benchmark scenes:<n>:<seed>:<size>, or 'none'")
    p.add_argument("--dataset", action="append", default=[], help="COCO annotations JSON (repeatable)")
    p.add_argument("--policy", action="append", default=None,
                   help="oracle, g=<value>, sam2-single or sam2-best3 (repeatable; default oracle and g=1)")
    p.add_argument("--baseline-checkpoint", default=None,
                   help="SAM-2 checkpoint of the sam2-* policies (default: the one the adapter was trained on)")
    p.add_argument("--whole-image", action="store_true",
                   help="also whole-image AR (masks at all 10 g, the official protocol: m2m pass, 64x64 grid)")
    p.add_argument("--points-per-side", type=int, default=64,
                   help="whole-image grid (official: 64; slow on CPU, 16 for a quick look; in the protocol hash)")
    p.add_argument("--no-m2m", dest="m2m", action="store_false",
                   help="whole-image: skip the mask-to-mask second pass (not the official protocol; in the hash)")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu; cuda when --gpus > 0)")
    p.add_argument("--ray-address", default=None,
                   help="run the evaluation as a Ray task on this cluster (e.g. auto) instead of in this process")
    p.add_argument("--gpus", type=float, default=0.0, help="GPUs the Ray task reserves (with --ray-address)")
    p.add_argument("--fail-on-regression", action="store_true", help="exit with status 1 on a regression")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    import json

    from unsamv2.data import storage
    from unsamv2.eval.checkpoint import EvalJob, run_eval
    from unsamv2.eval.registry import resolve_checkpoint

    job = EvalJob(scenes=args.scenes, datasets=tuple(args.dataset), policies=tuple(args.policy or ()),
                  whole_image=args.whole_image, points_per_side=args.points_per_side, m2m=args.m2m,
                  max_clicks=args.max_clicks, device=args.device, baseline_checkpoint=args.baseline_checkpoint,
                  ray_address=args.ray_address, gpus=args.gpus, history_uri=args.store)
    checkpoint = resolve_checkpoint(args.checkpoint, args.registry)
    if job.ray_address:
        print(f"evaluating as a Ray task on {job.ray_address} with {job.gpus:g} GPU(s)", flush=True)
    result = run_eval(job, checkpoint, args.out, progress=True)
    for key in sorted(result["metrics"]):
        if key.endswith(("NoC80", "NoC85", "NoC90", "1-IoU", "AR1000")):
            print(f"  {key:<40} {result['metrics'][key]:.4g}")
    verdict = json.loads(storage.read_text(result["files"]["verdict"])) if "verdict" in result["files"] else None
    print(f"evaluated {checkpoint}; report {result['files']['html']}"
          + (f"; {verdict['summary']}" if verdict else ""))
    return 1 if (args.fail_on_regression and verdict and verdict["regressed"]) else 0
