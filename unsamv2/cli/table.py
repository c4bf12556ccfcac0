"""``unsamv2 table``: inspect mask tables and convert them to / from COCO JSON."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="inspect a mask table; import/export COCO and the official JSON layout")
    tsub = p.add_subparsers(dest="table_command", metavar="ACTION")
    tsub.required = True

    info = tsub.add_parser("info", help="summarise a mask table (rows, statuses, masks, shards)")
    info.add_argument("table", help="table root folder, s3:// prefix, or a .parquet file")
    info.set_defaults(func=_info)

    exp = tsub.add_parser("export-coco", help="write a table's masks as COCO JSON with granularity fields")
    exp.add_argument("table")
    exp.add_argument("out", help="output .json path or s3:// URI")
    exp.set_defaults(func=_export)

    imp = tsub.add_parser("import-coco", help="turn a COCO instance JSON into a mask table")
    imp.add_argument("coco", help="COCO .json path or s3:// URI")
    imp.add_argument("out", help="output table root folder or s3:// prefix")
    imp.add_argument("--image-root", default=None,
                     help="folder the COCO file_name entries are relative to (default: the JSON's folder)")
    imp.add_argument("--shard-size", type=int, default=1000)
    imp.add_argument("--skip-crowd", action="store_true",
                     help="leave crowd/ignore regions (iscrowd=1) out; without it they are refused, since a mask "
                          "table has no ignore regions")
    imp.set_defaults(func=_import_coco)

    off = tsub.add_parser("import-official", help="turn the official release's per-image JSON folder into a table")
    off.add_argument("folder")
    off.add_argument("out")
    off.add_argument("--image-root", default=None)
    off.add_argument("--shard-size", type=int, default=1000)
    off.set_defaults(func=_import_official)


def _info(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from unsamv2.data import read_mask_table
    from unsamv2.data.shards import read_table_checked

    damaged: dict[int, str] = {}
    intact: list[int] = []
    if args.table.endswith(".parquet"):
        table = read_mask_table(args.table)
    else:
        table, intact, damaged = read_table_checked(args.table)
    n_masks = pc.sum(pc.list_value_length(table["masks"])).as_py() or 0
    statuses = table.group_by("status").aggregate([("status", "count")]).to_pylist()
    errors = table.filter(pc.equal(table["status"], "error")).group_by("error").aggregate([("error", "count")])
    print(f"table      {args.table}")
    print(f"shards     {len(intact)}")
    print(f"images     {table.num_rows}  " + "  ".join(f"{s['status']}={s['status_count']}" for s in statuses))
    print(f"masks      {n_masks}  ({n_masks / max(table.num_rows, 1):.1f} per image)")
    for row in errors.to_pylist():
        print(f"error      {row['error']}: {row['error_count']}")
    for index, reason in damaged.items():
        print(f"damaged    shard {index} (left out): {reason}")
    if damaged:
        print(f"           rerun the 'unsamv2 mine' command that wrote {args.table} to recompute "
              f"{len(damaged)} damaged shard(s).")
    return 0


def _export(args: argparse.Namespace) -> int:
    from unsamv2.data import read_mask_table, table_to_coco
    from unsamv2.data.coco import write_json

    coco = table_to_coco(read_mask_table(args.table))
    write_json(args.out, coco)
    print(f"wrote {len(coco['images'])} images and {len(coco['annotations'])} annotations to {args.out}")
    return 0


def _check_shard_size(n: int) -> None:
    from unsamv2.errors import InputError

    if n < 1:
        raise InputError(f"--shard-size must be at least 1, got {n}.")


def _import_coco(args: argparse.Namespace) -> int:
    from unsamv2.data import coco_to_table, load_json, write_table
    from unsamv2.train.supervision import json_folder

    _check_shard_size(args.shard_size)
    root = args.image_root if args.image_root is not None else json_folder(args.coco)
    table = coco_to_table(load_json(args.coco), image_root=root, where=args.coco, skip_crowd=args.skip_crowd)
    shards = write_table(args.out, table, args.shard_size)
    print(f"wrote {table.num_rows} images in {len(shards)} shard(s) to {args.out}")
    return 0


def _import_official(args: argparse.Namespace) -> int:
    from unsamv2.data import import_official_dir, write_table

    _check_shard_size(args.shard_size)
    table = import_official_dir(args.folder, image_root=args.image_root)
    shards = write_table(args.out, table, args.shard_size)
    print(f"wrote {table.num_rows} images in {len(shards)} shard(s) to {args.out}")
    return 0
