"""Model merging (mergekit's methods as one registry) and the layer-wise analysis of weight updates.

methods.py: MERGE_METHODS, the recipe configs and the mergekit parameters they map to (no torch);
engine.py: streamed, checked merges of model directories; checkpoint.py: safetensors streaming;
origin.py: plan-time compatibility; layers.py: per-layer update norms and layer resets.
"""

from reasondistill.merge.methods import MERGE_METHODS, MergeMethod

__all__ = ["MERGE_METHODS", "MergeMethod"]
