"""The mask-table data contract: schema, RLE helpers, shard writer/reader, COCO interop.

Public entry points::

    from unsamv2.data import read_mask_table, write_shard, encode_rle, decode_rle
"""

from unsamv2.data.coco import coco_to_table, import_official_dir, load_json, table_to_coco
from unsamv2.data.rle import (
    decode_rle,
    decode_rles,
    encode_rle,
    encode_rles,
    from_coco_segmentation,
    rle_areas,
    rle_bboxes,
    to_coco_segmentation,
)
from unsamv2.data.schema import (
    MASK_STRUCT,
    MASK_TABLE_SCHEMA,
    SCHEMA_VERSION,
    image_row,
    mask_record,
    rows_to_table,
)
from unsamv2.data.shards import (
    ShardInfo,
    list_complete_shards,
    read_mask_table,
    write_shard,
    write_table,
)

__all__ = [
    "ShardInfo",
    "coco_to_table",
    "import_official_dir",
    "list_complete_shards",
    "load_json",
    "read_mask_table",
    "table_to_coco",
    "write_shard",
    "write_table",
    "MASK_STRUCT",
    "MASK_TABLE_SCHEMA",
    "SCHEMA_VERSION",
    "decode_rle",
    "decode_rles",
    "encode_rle",
    "encode_rles",
    "from_coco_segmentation",
    "image_row",
    "mask_record",
    "rle_areas",
    "rle_bboxes",
    "rows_to_table",
    "to_coco_segmentation",
]
