"""Procedural dynamic scenes with exact 4D ground truth, rendered in torch (CPU or GPU, batched).

A clip is a deterministic function of ``(SceneConfig, seed)``: a pinhole camera with random
intrinsics on a smooth random path (or static) inside a textured room (an axis-aligned box seen
from inside), and 1..K rigid spheres and boxes, some static, some translating and/or rotating.
Textures (value noise, soft checkers, stripes, colour noise) are evaluated in each surface's local
frame, so they move with it; Lambertian shading can be turned off (``shading=False``) for exact
photometric consistency. Rendering is analytic ray casting through pixel centres; all ground truth
comes from the geometry, not from estimation.

Entry points::

    config = SceneConfig(height=224, width=224, num_frames=24, num_tracks=64)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clip = render_batch(config, seeds=[0, 1, 2, 3], device=device)   # SyntheticClip, B = 4
    dataset = SyntheticDataset(config, length=10_000, seed_offset=0)   # item i = seed offset + i
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_clips)  # yields SyntheticClip

``SyntheticClip`` fields (B clips, T frames, N tracks; float32 unless noted):

- ``rgb_btchw`` (B, T, 3, H, W) in [0, 1].
- ``depth_bthw`` (B, T, H, W): camera-frame z of the first surface hit, metres.
- ``flow_fwd_bt2hw`` / ``flow_bwd_bt2hw`` (B, T, 2, H, W): optical flow (dx, dy) in pixels from
  frame t to t+1 / t-1: each pixel's surface point, moved rigidly with its object and projected
  with the camera of the other frame. Invalid entries (last forward, first backward, point behind
  the other camera) are 0; occlusion in the other frame does not invalidate flow.
- ``flow_fwd_valid_bthw`` / ``flow_bwd_valid_bthw`` (B, T, H, W) bool.
- ``depth_fwd_bthw`` / ``depth_bwd_bthw`` (B, T, H, W): z of the same moved point in camera t+1 /
  t-1 (0 where invalid); comparing it with the depth map there gives occlusion.
- ``motion_bthw`` (B, T, H, W) bool: the surface point moves in the world between t and t-1 or
  t+1 (it belongs to an object whose pose changes there); independent of camera motion.
- ``instance_bthw`` (B, T, H, W) long: 0 room, k >= 1 object slot k - 1.
- ``tracks_btn2`` (B, T, N, 2): track positions (x, y) in pixels.
- ``tracks3d_cam_btn3`` (B, T, N, 3): track points in camera t coordinates, metres.
- ``tracks3d_world_btn3`` (B, T, N, 3): track points in world coordinates, metres.
- ``visibility_btn`` (B, T, N) bool: in front of the camera, inside the image
  ([-0.5, W - 0.5] x [-0.5, H - 0.5]) and not occluded (exact ray cast through the track position).
- ``queries_bn3`` (B, N, 3): (t, x, y) with t the query frame index (``query_frames="first"``: 0,
  ``"random"``: uniform) and x, y the query pixel; tracks are visible at their query frame. About
  ``track_object_fraction`` of the queries lie on objects (as far as objects are visible).
- ``intrinsics_bt33`` (B, T, 3, 3) in pixels; ``extrinsics_bt44`` (B, T, 4, 4) world-to-camera.
- ``seed_b`` (B,) long.

Conventions: OpenCV camera axes (x right, y down, z forward); pixel (column i, row j) has its
centre at (i, j), so ``x = fx * X / Z + cx`` is the pixel coordinate directly; world y points down
(the floor is at positive y). ``SyntheticClip`` has ``.to(device)``, ``len()``, ``clip[i]`` /
``clip[i:j]`` (batched sub-clips) and ``clip.sample(i)`` (one unbatched sample as a dict).

``SyntheticDataset`` items are unbatched dicts keyed like the fields without the batch letter
(``rgb_tchw``, ``depth_thw``, ``tracks_tn2``, ``queries_n3``, ``seed``, ...), chosen because
``default_collate`` handles dicts; ``collate_clips`` / ``SyntheticClip.from_collated`` turn a
collated batch back into a ``SyntheticClip``.

Lower level: ``sample_scene(config, seed) -> Scene`` (all randomness, on the CPU) and
``render_scene(scene, config) -> SyntheticClip`` (deterministic), e.g. to edit a scene before
rendering it.
"""

from l4p.data.synthetic.clip import SyntheticClip
from l4p.data.synthetic.config import SceneConfig
from l4p.data.synthetic.dataset import SyntheticDataset, collate_clips
from l4p.data.synthetic.render import render_batch, render_scene
from l4p.data.synthetic.scene import Scene, sample_scene

__all__ = [
    "SceneConfig",
    "Scene",
    "SyntheticClip",
    "SyntheticDataset",
    "collate_clips",
    "render_batch",
    "render_scene",
    "sample_scene",
]
