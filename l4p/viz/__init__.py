"""Visualisation of predictions as images and videos.

Depth colormaps, the optical-flow colour wheel, motion and track overlays, side-by-side
mosaics, and writing a prediction as videos.

All functions take numpy arrays or tensors and return uint8 RGB arrays (..., H, W, 3)::

    from l4p.viz import colorize_depth, flow_to_rgb, draw_tracks, visualize_prediction
    depth_rgb = colorize_depth(pred.depth[0])                  # (T, H, W, 3)
    flow_rgb = flow_to_rgb(pred.flow[0])                       # (T, H, W, 3), frame 0 black
    paths = visualize_prediction(frames, pred[0], "out/", fps=30)
"""

from l4p.viz.depth import colorize_depth, depth_to_unit
from l4p.viz.flow import color_wheel, flow_to_rgb
from l4p.viz.mosaic import label_frames, mosaic
from l4p.viz.overlay import motion_overlay
from l4p.viz.tracks import draw_tracks, track_colors
from l4p.viz.writer import visualize_prediction

__all__ = [
    "color_wheel",
    "colorize_depth",
    "depth_to_unit",
    "draw_tracks",
    "flow_to_rgb",
    "label_frames",
    "mosaic",
    "motion_overlay",
    "track_colors",
    "visualize_prediction",
]
