"""unsamv2: segment anything at any granularity (UnSAMv2 on SAM-2).

Subpackages (imported lazily by callers; importing ``unsamv2`` itself is cheap and side-effect free):

- ``unsamv2.data``     mask-table contract (Parquet schema, RLE, shards, COCO interop), storage
- ``unsamv2.scenes``   procedural hierarchical scenes with exact ground truth, sample photos
- ``unsamv2.mining``   granularity-aware divide and conquer (MaskCut + iterative merging)
- ``unsamv2.model``    SAM-2 + granularity encoder / token / LoRA, predictors
- ``unsamv2.pipeline`` manifests and the ``MinerStage``
- ``unsamv2.backends`` local / Ray execution (the only place that imports ray)
- ``unsamv2.train``    adapter training recipe
- ``unsamv2.eval``     the paper's evaluation protocol and reports
"""

__version__ = "0.1.0"

from unsamv2.errors import UnSAMv2Error

__all__ = ["UnSAMv2Error", "__version__"]
