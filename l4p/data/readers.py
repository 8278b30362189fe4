"""File-format readers and writers, one import away (``from l4p.data.readers import read_flo``).

The implementations live in ``l4p.data.formats`` (one module per format); this module
re-exports them.
"""

from l4p.data.formats import (
    PIEH_TAG,
    UNKNOWN_FLOW_THRESH,
    SintelSequence,
    TapVid3DSample,
    known_flow_mask,
    load_tapvid3d_npz,
    load_tapvid3d_prediction,
    read_cam,
    read_dpt,
    read_flo,
    read_kitti_flow,
    read_mask_png,
    save_tapvid3d_npz,
    save_tapvid3d_prediction,
    write_cam,
    write_dpt,
    write_flo,
    write_kitti_flow,
)

__all__ = [
    "PIEH_TAG",
    "UNKNOWN_FLOW_THRESH",
    "SintelSequence",
    "TapVid3DSample",
    "known_flow_mask",
    "load_tapvid3d_npz",
    "load_tapvid3d_prediction",
    "read_cam",
    "read_dpt",
    "read_flo",
    "read_kitti_flow",
    "read_mask_png",
    "save_tapvid3d_npz",
    "save_tapvid3d_prediction",
    "write_cam",
    "write_dpt",
    "write_flo",
    "write_kitti_flow",
]
