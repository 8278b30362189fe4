"""Point-tracking head (SAM-style prompt encoder, two-way transformer, 3-D mask decoder) and memory."""

from l4p.heads.tracking.driver import TrackingResult, WindowRecord, run_windows, stitch_window
from l4p.heads.tracking.head import TrackingHead, TrackWindowOutput
from l4p.heads.tracking.memory import TrackMemory, WindowInputs, init_memory, update_memory, window_inputs

__all__ = [
    "TrackMemory",
    "TrackWindowOutput",
    "TrackingHead",
    "TrackingResult",
    "WindowInputs",
    "WindowRecord",
    "init_memory",
    "run_windows",
    "stitch_window",
    "update_memory",
    "window_inputs",
]
