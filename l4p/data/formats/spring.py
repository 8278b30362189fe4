"""Spring (Mehl et al., CVPR 2023) files: ``.flo5`` flow and ``.dsp5`` disparity (HDF5), tree.

Layout (facts from the Spring website code and ``spring_utils``)::

    <split>/<scene 4 digits>/frame_{left,right}/frame_<cam>_%04d.png        1920x1080 RGB
    <split>/<scene>/flow_{FW,BW}_{left,right}/flow_<dir>_<cam>_%04d.flo5    HDF5 dataset "flow"
    <split>/<scene>/disp1_{left,right}/disp1_<cam>_%04d.dsp5                HDF5 dataset "disparity"
    <split>/<scene>/disp2_{FW,BW}_{left,right}/disp2_<dir>_<cam>_%04d.dsp5
    <split>/<scene>/cam_data/{intrinsics,extrinsics,focaldistance}.txt
    <split>/<scene>/maps/{detailmap,matchmap,rigidmap,skymap}_*/...png

Ground truth (flow, disparity) is stored at **twice** the image resolution (2160x3840), NaN where
unknown. Frames are numbered from 1; FW flow of frame k maps k -> k+1 (k = 1..N-1), BW flow of
frame k maps k -> k-1 (k = 2..N). h5py is needed (``pip install l4p[bench]``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["SpringScene", "read_dsp5", "read_flo5", "write_dsp5", "write_flo5"]


def _h5py():
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Spring files are HDF5: pip install h5py (or l4p[bench])") from err
    return h5py


def _read(path: str | Path, key: str) -> np.ndarray:
    with _h5py().File(path, "r") as f:
        if key not in f:
            raise KeyError(
                f"{path} has no '{key}' dataset; is it a Spring .{'flo5' if key == 'flow' else 'dsp5'} file?"
            )
        return f[key][()]


def _write(path: str | Path, key: str, data: np.ndarray) -> None:
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with _h5py().File(tmp, "w") as f:
        f.create_dataset(key, data=data, compression="gzip", compression_opts=5)
    os.replace(tmp, path)


def read_flo5(path: str | Path) -> np.ndarray:
    """(H, W, 2) flow of a ``.flo5`` file (dataset ``flow``), NaN = unknown."""
    return _read(path, "flow")


def write_flo5(path: str | Path, flow: np.ndarray) -> None:
    """Write (H, W, 2) flow as ``.flo5`` (gzip level 5, as Spring's tools do), atomically."""
    _write(path, "flow", flow)


def read_dsp5(path: str | Path) -> np.ndarray:
    """(H, W) disparity of a ``.dsp5`` file (dataset ``disparity``), NaN = unknown."""
    return _read(path, "disparity")


def write_dsp5(path: str | Path, disparity: np.ndarray) -> None:
    """Write (H, W) disparity as ``.dsp5``, atomically."""
    _write(path, "disparity", disparity)


class SpringScene:
    """One scene folder of a Spring split.

    Args:
        folder: ``<split>/<scene>``.
        cam: ``"left"`` or ``"right"``.
    """

    def __init__(self, folder: str | Path, cam: str = "left") -> None:
        self.folder, self.cam = Path(folder), cam
        files = sorted((self.folder / f"frame_{cam}").glob(f"frame_{cam}_*.png"))
        if not files:
            raise FileNotFoundError(f"no frame_{cam}_*.png in {self.folder / f'frame_{cam}'}")
        self.numbers = [int(f.stem.rsplit("_", 1)[1]) for f in files]

    @property
    def name(self) -> str:
        """Scene name (4 digits)."""
        return self.folder.name

    def __len__(self) -> int:
        return len(self.numbers)

    def frame(self, number: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of frame ``number`` (1-based)."""
        path = self.folder / f"frame_{self.cam}" / f"frame_{self.cam}_{number:04d}.png"
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"cannot read {path}")
        return np.ascontiguousarray(img[..., ::-1])

    def flow_path(self, direction: str, number: int) -> Path:
        """Path of the ``FW``/``BW`` flow of frame ``number``."""
        return self.folder / f"flow_{direction}_{self.cam}" / f"flow_{direction}_{self.cam}_{number:04d}.flo5"

    def flow(self, direction: str, number: int) -> np.ndarray:
        """(2H, 2W, 2) GT flow of frame ``number`` (``FW``: to number+1, ``BW``: to number-1)."""
        return read_flo5(self.flow_path(direction, number))
