"""Optical flow: estimators, consistency masks, chaining, grid resizing, cache, pictures."""

from wdiff.flow.cache import TensorCache, default_cache_dir
from wdiff.flow.estimators import METHODS, make_estimator
from wdiff.flow.field import FlowField
from wdiff.flow.motion import ChainedFlow, Motion
from wdiff.flow.ops import (
    chain,
    chain_valid,
    complete_in_mask,
    consistency_mask,
    inside_frame,
    resize_to_grid,
    warp_bilinear,
)
from wdiff.flow.video_flow import (
    FlowOptions,
    check_enough_frames,
    complete_field,
    estimate_video_flows,
    video_flows,
)
from wdiff.flow.viz import write_flow_video

__all__ = [
    "METHODS",
    "ChainedFlow",
    "FlowField",
    "FlowOptions",
    "Motion",
    "TensorCache",
    "chain",
    "chain_valid",
    "check_enough_frames",
    "complete_field",
    "complete_in_mask",
    "consistency_mask",
    "default_cache_dir",
    "estimate_video_flows",
    "inside_frame",
    "make_estimator",
    "resize_to_grid",
    "video_flows",
    "warp_bilinear",
    "write_flow_video",
]
