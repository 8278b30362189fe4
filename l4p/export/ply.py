"""Writing PLY files: points with colours, optional triangle faces.

MeshLab, CloudCompare, Open3D and Blender read them.

Binary files are little-endian: a `vertex` element with `float x, y, z` and, with colours,
`uchar red, green, blue`; a `face` element with `list uchar int vertex_indices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from l4p.export.atomic import atomic_path


def write_ply(
    path: str | Path,
    *,
    vertices: np.ndarray,
    colors: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    binary: bool = True,
    comments: Sequence[str] = (),
) -> Path:
    """Write a point cloud or triangle mesh.

    Args:
        path: Output file (its folder is created).
        vertices: (N, 3) positions (stored as float32).
        colors: (N, 3) uint8 RGB per vertex, or None.
        faces: (F, 3) vertex indices of triangles, or None.
        binary: Binary little-endian (compact) or ASCII (readable).
        comments: Header comment lines (no newlines).

    Returns:
        The path.
    """
    vertices = np.asarray(vertices, np.float32).reshape(-1, 3)
    n = len(vertices)
    if colors is not None:
        colors = np.asarray(colors, np.uint8).reshape(-1, 3)
        if len(colors) != n:
            raise ValueError(f"{len(colors)} colours for {n} vertices")
    if faces is not None:
        faces = np.asarray(faces, np.int32).reshape(-1, 3)
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise ValueError("face indices out of range")
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    header += [f"comment {c}" for c in comments]
    header += [f"element vertex {n}", "property float x", "property float y", "property float z"]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    if faces is not None:
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        fields = [("xyz", "<f4", (3,))] + ([("rgb", "u1", (3,))] if colors is not None else [])
        table = np.empty(n, dtype=np.dtype(fields))
        table["xyz"] = vertices
        if colors is not None:
            table["rgb"] = colors
        face_table = None
        if faces is not None:
            face_table = np.empty(len(faces), dtype=np.dtype([("n", "u1"), ("idx", "<i4", (3,))]))
            face_table["n"], face_table["idx"] = 3, faces
        if binary:
            f.write(table.tobytes())
            if face_table is not None:
                f.write(face_table.tobytes())
        else:
            rows = [" ".join(f"{v:.6g}" for v in p) for p in vertices]
            if colors is not None:
                rows = [f"{r} {c[0]} {c[1]} {c[2]}" for r, c in zip(rows, colors)]
            if faces is not None:
                rows += [f"3 {a} {b} {c}" for a, b, c in faces]
            f.write(("\n".join(rows) + ("\n" if rows else "")).encode("ascii"))
    return path
