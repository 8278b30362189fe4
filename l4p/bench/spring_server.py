"""Spring server layout tools: GT converter, submission writer, scorer (``l4p bench spring-*``).

- ``l4p bench spring-convert SPLIT_ROOT eval_flow.hdf5``: full-resolution GT ``.flo5`` files of a
  split (``<scene>/flow_{FW,BW}_{left,right}/...``) -> the server's eval file: dataset ``flow``,
  (N, 4, 2) **float16** (the server subtracts in float16, so GT must be float16 too).
- ``l4p bench spring-submission PRED_ROOT flow_submission.hdf5``: predictions at image resolution
  in the same tree (``.flo5``, (H, W, 2)) -> dataset ``flow``, (N, 2) float16, the layout the
  official ``flow_subsampling`` tool uploads.
- ``l4p bench spring-score SUBMISSION.hdf5 EVAL.hdf5``: the server's numbers (total, s0-10,
  s10-40, s40+) printed as JSON.

Options (``--set``): ``scenes=3:131,19:111`` (scene:frame count; default the official test
list), ``hero=none`` or ``hero=3:FW:left:17,...`` (default the official hero frames),
``cams=left,right``, ``steps=40,40,40`` (random pixel steps), ``size=51839``.

What this can and cannot do: the organisers withhold the true random steps, so a file made here
with the public placeholder steps has the server's **layout and order** but not its pixel
subset; upload the output of the official ``flow_subsampling`` binary instead. These tools give
an exact local replica of the server's arithmetic on data with GT (e.g. the train split, with
``--set scenes=...,hero=none``), and let a submission be checked for shape, order and NaN first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from l4p.data.formats.spring import read_flo5
from l4p.metrics.flow_spring_server import (
    PUBLIC_PLACEHOLDER_STEPS,
    REDUCED_SIZE,
    SPRING_HERO_FRAMES,
    SPRING_TEST_SCENES,
    server_cases,
    server_scores,
    subsample_indices,
    to_server_gt,
)

logger = logging.getLogger(__name__)

__all__ = ["ServerLayout", "build_server_array", "run_tool"]


class ServerLayout:
    """Which cases and pixels a server file holds (see the module docstring for the options)."""

    def __init__(self, options: dict[str, str]) -> None:
        scenes = options.get("scenes")
        self.scenes = (
            [tuple(int(v) for v in s.split(":")) for s in scenes.split(",")]
            if scenes
            else list(SPRING_TEST_SCENES)
        )
        hero = options.get("hero")
        if hero == "none":
            self.hero: list = []
        elif hero:
            self.hero = [(int(a), b, c, int(d)) for a, b, c, d in (h.split(":") for h in hero.split(","))]
        else:
            self.hero = list(SPRING_HERO_FRAMES)
        self.cams = options.get("cams", "left,right").split(",")
        steps = options.get("steps")
        self.steps = [int(s) for s in steps.split(",")] if steps else list(PUBLIC_PLACEHOLDER_STEPS)
        self.size = int(options.get("size", REDUCED_SIZE))

    def cases(self) -> tuple[list, list]:
        """``(subsampled cases, hero cases)``."""
        return server_cases(self.scenes, self.hero, self.cams)  # type: ignore[arg-type]


def _flo5(root: Path, case: tuple[int, str, str, int]) -> np.ndarray:
    scene, direction, cam, frame = case
    path = root / f"{scene:04d}" / f"flow_{direction}_{cam}" / f"flow_{direction}_{cam}_{frame:04d}.flo5"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the server layout needs every case)")
    return read_flo5(path)


def build_server_array(root: Path, layout: ServerLayout, *, gt: bool) -> np.ndarray:
    """The server array of a tree: GT (N, 4, 2) float16 when ``gt``, else predictions (N, 2)."""
    cases, hero = layout.cases()
    pick: Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray]
    if gt:
        pick = to_server_gt
    else:
        pick = lambda f, r, c: (f.reshape(-1, 2) if r is None else f[r, c]).astype(np.float16)  # noqa: E731
    parts = []
    for case in cases:
        flow = _flo5(root, case)
        width = flow.shape[1] // 2 if gt else flow.shape[1]
        rows, cols = subsample_indices(
            scene=case[0], frame=case[3], width=width, steps=layout.steps, size=layout.size
        )
        parts.append(pick(flow, rows, cols))
    parts += [pick(_flo5(root, case), None, None) for case in hero]
    if not parts:
        raise ValueError("the layout holds no case; check --set scenes=...")
    return np.concatenate(parts)


def _write_h5(path: Path, data: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("flow", data=data, compression="gzip", compression_opts=9)
    os.replace(tmp, path)


def run_tool(tool: str, source: Path, out: Path, options: dict[str, str]) -> int:
    """Run ``spring-convert``, ``spring-submission`` or ``spring-score``; returns the exit code."""
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if tool == "spring-score":
        sub, gt = read_flo5(source), read_flo5(out)
        if np.isnan(sub.astype(np.float32)).any():
            raise ValueError(f"{source} holds NaN; the server rejects such a submission")
        sys.stdout.write(json.dumps(server_scores(sub, gt), indent=1) + "\n")
        return 0
    data = build_server_array(source, ServerLayout(options), gt=tool == "spring-convert")
    if tool == "spring-submission" and np.isnan(data.astype(np.float32)).any():
        raise ValueError("the predictions hold NaN; the server rejects such a submission")
    _write_h5(out, data)
    logger.info("%s: wrote %s, dataset 'flow' %s %s", tool, out, data.shape, data.dtype)
    return 0
