"""Turn what users pass to `predict` into a validated (B, T, 3, H, W) float tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

VideoLike = str | Path | np.ndarray | torch.Tensor


def as_video_tensor(video: VideoLike) -> torch.Tensor:
    """Convert a video to a float32 tensor (B, T, 3, H, W) in [0, 1].

    Args:
        video: A path (mp4, gif, folder of frames), a uint8 numpy array (T, H, W, 3) or
            (B, T, H, W, 3), or a torch tensor (T, 3, H, W) / (B, T, 3, H, W), uint8 or
            float in [0, 1].

    Raises:
        ValueError: Empty video, wrong number of channels or dimensions, non-finite values.
        FileNotFoundError: The path does not exist.
    """
    if isinstance(video, (str, Path)):
        from l4p.data.video import read_video

        video = read_video(video).frames
    if isinstance(video, np.ndarray):
        if video.ndim not in (4, 5) or video.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"numpy video has shape {video.shape}; expected (T, H, W, 3) or (B, T, H, W, 3) "
                "(channels last, RGB)"
            )
        video = torch.from_numpy(np.ascontiguousarray(video[..., :3] if video.shape[-1] == 4 else video))
        video = video.movedim(-1, -3)
    if not isinstance(video, torch.Tensor):
        raise TypeError(
            f"unsupported video type {type(video).__name__}; pass a path, a numpy array or a tensor"
        )
    if video.ndim == 4:
        video = video.unsqueeze(0)
    if video.ndim != 5:
        raise ValueError(
            f"video tensor has shape {tuple(video.shape)}; expected (T, 3, H, W) or (B, T, 3, H, W)"
        )
    if video.numel() == 0 or video.shape[1] == 0:
        raise ValueError(f"video is empty (shape {tuple(video.shape)}); pass at least one frame")
    if video.shape[2] == 1:
        video = video.expand(-1, -1, 3, -1, -1)
    if video.shape[2] != 3:
        raise ValueError(
            f"video has {video.shape[2]} channels (shape {tuple(video.shape)}); expected 3 (RGB) on axis -3 "
            "for tensors, (T, 3, H, W); numpy arrays are channels-last (T, H, W, 3)"
        )
    if video.dtype == torch.uint8:
        return video.float() / 255.0
    if not video.is_floating_point():
        raise ValueError(f"video dtype {video.dtype} is not supported; use uint8 or float in [0, 1]")
    video = video.float()
    if not torch.isfinite(video).all():
        bad = (~torch.isfinite(video)).flatten(2).any(-1).nonzero()[:5, :2].tolist()
        raise ValueError(
            f"video has NaN or infinite values (first (batch, frame) pairs: {bad}); clean those frames"
        )
    if video.min() < -1e-3 or video.max() > 1 + 1e-3:
        raise ValueError(
            f"float video values span [{video.min().item():.3g}, {video.max().item():.3g}]; expected [0, 1] "
            "(divide uint8 frames by 255, or pass them as uint8)"
        )
    return video.clamp(0, 1)
