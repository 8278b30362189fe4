"""Configuration of the procedural scene generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ObjectKind = Literal["sphere", "box"]
TextureKind = Literal["noise", "checker", "stripes"]

OBJECT_KINDS: tuple[ObjectKind, ...] = ("sphere", "box")
TEXTURE_KINDS: tuple[TextureKind, ...] = ("noise", "checker", "stripes")


@dataclass(frozen=True, kw_only=True)
class SceneConfig:
    """Parameters of a random synthetic clip; every clip is a deterministic function of (config, seed).

    Motion magnitudes are per clip (the largest displacement from the first frame over the whole
    clip), so that scenes stay valid for any length; per-frame flow shrinks as ``num_frames`` grows.

    Attributes:
        height: Image height in pixels.
        width: Image width in pixels.
        num_frames: Clip length T (>= 2).
        num_objects: Inclusive range (min, max) of moving/static rigid objects per scene; the
            batch is padded to ``max`` object slots.
        object_kinds: Shapes to draw objects from.
        object_size: Range of the bounding radius of an object, metres.
        object_distance: Range of the depth of an object centre in the first camera, metres. An
            object whose path would come within 0.3 m of the camera is pushed further away (or
            dropped if that is not enough).
        moving_object_prob: Probability that an object moves (translates and/or rotates).
        rotating_object_prob: Probability that a moving object also rotates.
        object_motion: Largest translation of a moving object over the clip, metres.
        object_rotation_deg: Largest rotation of a rotating object over the clip, degrees.
        static_camera: If True the camera never moves (identical extrinsics in every frame).
        camera_motion: Largest camera translation over the clip, metres.
        camera_rotation_deg: Largest camera rotation over the clip, degrees.
        fov_deg: Range of the horizontal field of view, degrees.
        principal_jitter: Principal point offset from the image centre, as a fraction of size.
        aspect_jitter: Relative range of fy/fx around 1.
        num_tracks: Number N of ground-truth point tracks per clip.
        query_frames: ``"first"`` puts every query in frame 0, ``"random"`` draws a frame per track.
        track_object_fraction: Target fraction in [0, 1] of tracks that start on objects
            (rather than on the room), when objects are visible in the query frame.
        shading: Apply Lambertian shading (directional light + ambient). Turn off for exact
            photometric consistency across frames.
        ambient: Ambient light fraction in [0, 1] when shading is on.
        textures: Texture kinds to draw from, for the room and each object.
        texture_scale: Multiplier of the spatial frequency of all textures (larger = finer).
        texture_sharpness: Edge sharpness of checkers/stripes (smooth sigmoid; larger = crisper).
        color_jitter: Amplitude of the per-surface noise added on top of the two-colour pattern.
    """

    height: int = 224
    width: int = 224
    num_frames: int = 24
    num_objects: tuple[int, int] = (1, 4)
    object_kinds: tuple[ObjectKind, ...] = OBJECT_KINDS
    object_size: tuple[float, float] = (0.25, 0.8)
    object_distance: tuple[float, float] = (1.8, 5.0)
    moving_object_prob: float = 0.7
    rotating_object_prob: float = 0.5
    object_motion: float = 1.0
    object_rotation_deg: float = 120.0
    static_camera: bool = False
    camera_motion: float = 0.4
    camera_rotation_deg: float = 10.0
    fov_deg: tuple[float, float] = (45.0, 75.0)
    principal_jitter: float = 0.03
    aspect_jitter: float = 0.03
    num_tracks: int = 64
    query_frames: Literal["first", "random"] = "random"
    track_object_fraction: float = 0.5
    shading: bool = True
    ambient: float = 0.4
    textures: tuple[TextureKind, ...] = TEXTURE_KINDS
    texture_scale: float = 1.0
    texture_sharpness: float = 3.0
    color_jitter: float = 0.15

    def __post_init__(self) -> None:
        if self.height < 2 or self.width < 2:
            raise ValueError(f"image must be at least 2x2, got {self.height}x{self.width}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        lo, hi = self.num_objects
        if not 0 <= lo <= hi:
            raise ValueError(f"num_objects must be a range 0 <= min <= max, got {self.num_objects}")
        if self.num_tracks < 0:
            raise ValueError(f"num_tracks must be >= 0, got {self.num_tracks}")
        if not self.object_kinds or any(k not in OBJECT_KINDS for k in self.object_kinds):
            raise ValueError(f"object_kinds must be a non-empty subset of {OBJECT_KINDS}")
        if not self.textures or any(k not in TEXTURE_KINDS for k in self.textures):
            raise ValueError(f"textures must be a non-empty subset of {TEXTURE_KINDS}")
        if self.query_frames not in ("first", "random"):
            raise ValueError(f"query_frames must be 'first' or 'random', got {self.query_frames!r}")
        for name in ("moving_object_prob", "rotating_object_prob", "track_object_fraction", "ambient"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.object_size[0] <= 0 or self.object_size[0] > self.object_size[1]:
            raise ValueError(f"object_size must be a positive range, got {self.object_size}")
        if self.object_distance[0] <= 0 or self.object_distance[0] > self.object_distance[1]:
            raise ValueError(f"object_distance must be a positive range, got {self.object_distance}")
        if not 0 < self.fov_deg[0] <= self.fov_deg[1] < 180:
            raise ValueError(f"fov_deg must be a range inside (0, 180), got {self.fov_deg}")
