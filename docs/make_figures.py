"""Regenerate the README figure: a synthetic clip's ground truth drawn by `l4p.viz`.

Run `python docs/make_figures.py`; it writes docs/synthetic_ground_truth.png.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from l4p.data.synthetic import SceneConfig, render_batch
from l4p.data.video import read_video
from l4p.demo import ground_truth_prediction
from l4p.viz.writer import visualize_prediction


def main() -> None:
    """Render the clip, draw its ground truth, and save two mosaic frames side by side."""
    config = SceneConfig(height=192, width=256, num_frames=24, num_tracks=48, query_frames="first",
                         num_objects=(2, 3), moving_object_prob=1.0)  # fmt: skip
    clip = render_batch(config, [3])
    frames = (clip.rgb_btchw[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = visualize_prediction(frames, ground_truth_prediction(clip), tmp, fps=10.0, tail=10)
        mosaic = read_video(paths["mosaic"]).frames
    picture = np.concatenate([mosaic[6], np.full((mosaic.shape[1], 8, 3), 255, np.uint8), mosaic[20]], axis=1)
    out = Path(__file__).parent / "synthetic_ground_truth.png"
    iio.imwrite(out, picture)
    print(out, picture.shape)


if __name__ == "__main__":
    main()
