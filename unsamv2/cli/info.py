"""``unsamv2 info``: what a model configuration is made of (parameter counts, adapter parts)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameter counts of a model config (total, trainable, adapter parts)")
    p.add_argument("--config", default="sam2.1_hiera_s",
                   help="SAM-2 config name (sam2.1_hiera_t/_s/_b+/_l), YAML path, or 'tiny' (default sam2.1_hiera_s)")
    p.add_argument("--checkpoint", default=None, help="optional checkpoint to load (checks that it fits)")
    p.add_argument("--adapter", default=None, help="optional adapter file to load (prints its metadata)")
    p.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    from unsamv2.model import build_model, count_parameters, read_adapter

    model = build_model(args.config, checkpoint=args.checkpoint, adapter=args.adapter)
    counts = count_parameters(model)
    print(f"config                 {args.config}  (image size {model.image_size})")
    if args.checkpoint:
        info = model.unsamv2_build_info
        layout = "official UnSAMv2" if info.get("official_layout") else "SAM-2 / unsamv2"
        adapter = "with adapter" if info.get("checkpoint_has_adapter") else "no adapter"
        print(f"checkpoint             {args.checkpoint}  ({layout} layout, {adapter}, "
              f"sha256 {info['checkpoint_sha256'][:12]})")
    total = counts["total"]
    print(f"total parameters       {total:,}")
    print(f"trainable parameters   {counts['trainable']:,}  ({100 * counts['trainable'] / total:.3f}% of total)")
    print(f"frozen (SAM-2)         {counts['frozen']:,}")
    print(f"adapter additions      {counts['adapter']:,}")
    for part in ("granularity embedding", "granularity MLP", "granularity token",
                 "granularity token MLP", "LoRA"):
        print(f"  {part:<23}{counts[part]:,}")
    if args.adapter:
        _, metadata = read_adapter(args.adapter)
        for key, value in sorted(metadata.items()):
            print(f"adapter {key:<15}{value}")
    return 0
