"""Readers and writers of benchmark file formats (numpy in, numpy out; no torch).

- ``middlebury``: ``.flo`` optical flow (Middlebury, MPI-Sintel).
- ``sintel``: ``.dpt`` depth, ``.cam`` cameras, mask PNGs, ``SintelSequence``.
- ``kitti``: 16-bit flow PNGs.
- ``tapvid3d``: TAPVid-3D ground-truth and prediction ``.npz`` files.
"""

from l4p.data.formats.kitti import read_kitti_flow, write_kitti_flow
from l4p.data.formats.middlebury import PIEH_TAG, UNKNOWN_FLOW_THRESH, known_flow_mask, read_flo, write_flo
from l4p.data.formats.sintel import SintelSequence, read_cam, read_dpt, read_mask_png, write_cam, write_dpt
from l4p.data.formats.tapvid3d import (
    TapVid3DSample,
    load_tapvid3d_npz,
    load_tapvid3d_prediction,
    save_tapvid3d_npz,
    save_tapvid3d_prediction,
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
