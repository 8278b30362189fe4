"""Benchmark metrics, numerically matching the official evaluation code (numpy only).

- ``tapvid3d`` / ``tapvid3d_eval``: TAPVid-3D 3D-AJ, APD, OA; file-level driver and averaging.
- ``tapvid2d``: TAP-Vid AJ, δ_avg, OA; query sampling.
- ``flow``: EPE, n-px accuracy / outlier rates, KITTI Fl, Sintel masks, dataset pooling.
- ``flow_spring``: Spring's 4-sample EPE, 1px, Fl, WAUC.
- ``depth``: DepthCrafter video depth (AbsRel, δ1, RMSE after one scale/shift per video).
- ``pose``: ATE (Sim(3)-aligned), RTE, RRE.
"""

from l4p.metrics.depth import (
    DEPTHCRAFTER_PROTOCOLS,
    VideoDepthScores,
    mean_over_sequences,
    video_depth_metrics,
)
from l4p.metrics.flow import FlowAccumulator, endpoint_error, flow_scores, sintel_eval_mask
from l4p.metrics.flow_spring import spring_endpoint_error, spring_flow_scores
from l4p.metrics.pose import PoseScores, pose_metrics, umeyama_similarity
from l4p.metrics.tapvid2d import (
    compute_tapvid2d_metrics,
    mean_over,
    normalized_to_raster,
    pixels_to_raster,
    raster_to_pixels,
    sample_queries_first,
    sample_queries_strided,
)
from l4p.metrics.tapvid3d import compute_tapvid3d_metrics
from l4p.metrics.tapvid3d_eval import (
    average_over_subsets,
    evaluate_tapvid3d_subset,
    evaluate_tapvid3d_video,
    metric_eval_intrinsics,
)

__all__ = [
    "DEPTHCRAFTER_PROTOCOLS",
    "FlowAccumulator",
    "PoseScores",
    "VideoDepthScores",
    "average_over_subsets",
    "compute_tapvid2d_metrics",
    "compute_tapvid3d_metrics",
    "endpoint_error",
    "evaluate_tapvid3d_subset",
    "evaluate_tapvid3d_video",
    "flow_scores",
    "mean_over",
    "mean_over_sequences",
    "metric_eval_intrinsics",
    "normalized_to_raster",
    "pixels_to_raster",
    "pose_metrics",
    "raster_to_pixels",
    "sample_queries_first",
    "sample_queries_strided",
    "sintel_eval_mask",
    "spring_endpoint_error",
    "spring_flow_scores",
    "umeyama_similarity",
    "video_depth_metrics",
]
