"""Registry of benchmark protocols: ``l4p bench NAME`` looks them up here.

Each protocol names the module that implements it (imported only when it runs), a one-line
summary, and whether the L4P paper reports it. ``get_protocol(name)`` returns the run function.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PROTOCOLS", "BenchProtocol", "get_protocol"]


@dataclass(frozen=True)
class BenchProtocol:
    """One protocol.

    Attributes:
        name: ``l4p bench`` name.
        family: depth, flow, tracking-2d, tracking-3d, motion or pose.
        summary: One line for ``--list``.
        module: Module (under ``l4p.bench``) whose docstring documents the layout.
        factory: Function of that module returning the run function.
        args: Its arguments.
        in_paper: Whether the L4P paper reports this protocol.
    """

    name: str
    family: str
    summary: str
    module: str
    factory: str = "make_protocol"
    args: tuple[Any, ...] = ()
    in_paper: bool = False

    def load(self) -> Callable[..., dict]:
        """The run function (imports its module)."""
        module = importlib.import_module(f"l4p.bench.{self.module}")
        return getattr(module, self.factory)(*self.args)

    def doc(self) -> str:
        """The module docstring (the layout it reads)."""
        return importlib.import_module(f"l4p.bench.{self.module}").__doc__ or ""


def _p(*args: Any, **kwargs: Any) -> BenchProtocol:
    return BenchProtocol(*args, **kwargs)


_ALL = [
    _p("depth-sintel", "depth", "Sintel video depth, 50 frames, d_max 70 (Table 1)", "depth", args=("sintel",), in_paper=True),
    _p("depth-scannet", "depth", "ScanNet video depth, 90 frames, d_max 10 (Table 1)", "depth", args=("scannet",), in_paper=True),
    _p("depth-kitti", "depth", "KITTI video depth, 110 frames, d_max 80 (Table 1)", "depth", args=("kitti",), in_paper=True),
    _p("depth-bonn", "depth", "Bonn video depth, 110 frames, d_max 10 (Table 1)", "depth", args=("bonn",), in_paper=True),
    _p("depth-nyuv2", "depth", "NYUv2 depth, one frame repeated 16 times, d_max 10 (Table 1)", "depth", args=("nyuv2",), in_paper=True),
    _p("flow-kubric", "flow", "Kubric validation flow at 224x224: EPE, EPE<1 (Table 2)", "flow_clips", args=("kubric",), in_paper=True),
    _p("flow-dynamic-replica", "flow", "Dynamic Replica validation flow at 224x224 (Table 2)", "flow_clips", args=("dynamic-replica",), in_paper=True),
    _p("flow-spring-224", "flow", "Spring train flow at 224x224 (Table 2)", "flow_clips", args=("spring-224",), in_paper=True),
    _p("flow-sintel", "flow", "Sintel training flow, full resolution, RAFT convention", "flow_peers", args=("sintel",)),
    _p("flow-kitti15", "flow", "KITTI-15 training flow: EPE, Fl-all", "flow_peers", args=("kitti15",)),
    _p("flow-spring", "flow", "Spring flow at full resolution, server metric (4-sample EPE, 1px, Fl, WAUC, s0-10/s10-40/s40+)", "spring"),
    _p("tapvid-davis", "tracking-2d", "TAP-Vid DAVIS at 256x256, query-first and strided", "tracking2d", args=("davis",)),
    _p("tapvid-kinetics", "tracking-2d", "TAP-Vid Kinetics at 256x256, query-first and strided", "tracking2d", args=("kinetics",)),
    _p("tapvid3d-2d", "tracking-2d", "TAPVid-3D projected to 2D: 2D-AJ, APD, OA (Table 3)", "tracking3d", args=("2d",), in_paper=True),
    _p("tapvid3d", "tracking-3d", "TAPVid-3D 3D-AJ, APD3D, OA, median scaling (Table 4)", "tracking3d", args=("3d",), in_paper=True),
    _p("motion-vkitti", "motion", "Virtual KITTI 2 motion segmentation, foreground IoU (Sec. 4.6)", "motion", args=("vkitti",), in_paper=True),
    _p("motion-spring", "motion", "Spring motion segmentation, foreground IoU (Sec. 4.6)", "motion", args=("spring",), in_paper=True),
    _p("pose-sintel", "pose", "Sintel camera poses: ATE, RPE-trans, RPE-rot after Sim(3)", "pose", args=("sintel",)),
    _p("pose-tum", "pose", "TUM RGB-D dynamic camera poses (90 frames, stride 3)", "pose", args=("tum",)),
    _p("pose-scannet", "pose", "ScanNet camera poses (90 frames, stride 3)", "pose", args=("scannet",)),
]  # fmt: skip

PROTOCOLS: dict[str, BenchProtocol] = {p.name: p for p in _ALL}
"""Every protocol by name, in ``--list`` order."""


def get_protocol(name: str) -> BenchProtocol:
    """The protocol called ``name`` (a clear error listing the names otherwise)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(
            f"unknown benchmark {name!r}; choose from {', '.join(PROTOCOLS)} (l4p bench --list)"
        ) from None
