"""3D export: point clouds, cameras and 3D tracks.

Per-frame point clouds and camera frusta as PLY, poses as JSON and TUM text, and 3D tracks as
a TAPIP3D/SpatialTrackerV2-style npz.

::

    from l4p.export import export_3d
    export_3d("out/scene", frames=frames, pred=pred[0], fps=30)

Everything is in the units of the predicted depth (relative: one unknown scale per video),
in the world frame of the first camera, OpenCV axes (x right, y down, z forward).
"""

from l4p.export.cameras import (
    camera_frustum,
    rotation_to_quaternion,
    write_cameras_ply,
    write_poses_json,
    write_tum_trajectory,
)
from l4p.export.ply import write_ply
from l4p.export.pointcloud import depth_to_points, write_point_clouds
from l4p.export.scene import export_3d
from l4p.export.tracks3d import save_tracks_npz, tracks_npz_fields

__all__ = [
    "camera_frustum",
    "depth_to_points",
    "export_3d",
    "rotation_to_quaternion",
    "save_tracks_npz",
    "tracks_npz_fields",
    "write_cameras_ply",
    "write_point_clouds",
    "write_ply",
    "write_poses_json",
    "write_tum_trajectory",
]
