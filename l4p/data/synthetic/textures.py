"""Procedural solid textures evaluated in each surface's local frame (so they move with it).

All patterns are smooth (value noise with quintic interpolation, sigmoid-softened checkers and
stripes), so bilinear resampling of rendered frames is accurate away from object boundaries.
"""

from __future__ import annotations

import torch

_TABLE_SIZE = 256
_TABLE_SEED = 20240917


def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed permutation (512,) int32 and permuted lattice values (512,) in [0, 1) (two periods), from the CPU."""
    gen = torch.Generator().manual_seed(_TABLE_SEED)
    perm = torch.randperm(_TABLE_SIZE, generator=gen)
    values = torch.rand(_TABLE_SIZE, generator=gen)
    return torch.cat([perm, perm]).to(device=device, dtype=torch.int32), torch.cat([values[perm]] * 2).to(
        device
    )


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` via ``index_select`` (much faster than advanced indexing on the CPU)."""
    return torch.index_select(table, 0, index.reshape(-1)).view(index.shape)


def value_noise(point: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """3D value noise with quintic (C2) interpolation; lattice spacing 1, period 256.

    Lattice values come from a fixed permutation table (Perlin's hashing), so the noise is the
    same on every device.

    Args:
        point: (..., 3) coordinates.
        seed: (...) long hash seed, broadcastable to ``point[..., 0]``.

    Returns:
        (...) values in [0, 1].
    """
    perm, values = _tables(point.device)
    base = torch.floor(point)
    frac = point - base
    fade = frac * frac * frac * (frac * (frac * 6.0 - 15.0) + 10.0)
    lattice = base.to(torch.int32) & (_TABLE_SIZE - 1)
    ix, iy, iz = lattice.unbind(-1)
    ix = (ix + seed.to(torch.int32)) & (_TABLE_SIZE - 1)
    wx, wy, wz = fade.unbind(-1)
    hx = [_lookup(perm, ix + dx) for dx in (0, 1)]
    hxy = [[_lookup(perm, hx[dx] + iy + dy) for dy in (0, 1)] for dx in (0, 1)]
    corner = [[[_lookup(values, hxy[dx][dy] + iz + dz) for dz in (0, 1)] for dy in (0, 1)] for dx in (0, 1)]
    along_z = [[torch.lerp(corner[dx][dy][0], corner[dx][dy][1], wz) for dy in (0, 1)] for dx in (0, 1)]
    along_y = [torch.lerp(along_z[dx][0], along_z[dx][1], wy) for dx in (0, 1)]
    return torch.lerp(along_y[0], along_y[1], wx)


def fbm(point: torch.Tensor, seed: torch.Tensor, *, octaves: int = 3) -> torch.Tensor:
    """Fractal sum of value noise (lacunarity 2, gain 0.5), normalised to [0, 1]; shapes as ``value_noise``."""
    total = torch.zeros_like(point[..., 0])
    norm = 0.0
    for octave in range(octaves):
        amp = 0.5**octave
        total = total + amp * value_noise(point * (2.0**octave), seed + 71 * octave)
        norm += amp
    return total / norm


def surface_color(
    *,
    point: torch.Tensor,
    kind: torch.Tensor,
    colors: torch.Tensor,
    freq: torch.Tensor,
    offset: torch.Tensor,
    direction: torch.Tensor,
    seed: torch.Tensor,
    sharpness: float,
    jitter: float,
) -> torch.Tensor:
    """Albedo of surface points from per-point texture parameters.

    Args:
        point: (..., 3) local surface coordinates, metres.
        kind: (...) long, 0 noise, 1 checker, 2 stripes.
        colors: (..., 2, 3) the two pattern colours in [0, 1].
        freq: (...) cycles per metre.
        offset: (..., 3) texture-space offset.
        direction: (..., 3) unit stripe direction.
        seed: (...) long noise seed.
        sharpness: Steepness of the checker/stripe transitions (> 0).
        jitter: Amplitude of the additive noise detail.

    Returns:
        (..., 3) albedo in [0, 1].
    """
    q = point * freq[..., None] + offset
    noise = fbm(q, seed)
    steep = 2.0 * sharpness
    v_noise = torch.sigmoid(8.0 * (noise - 0.5))
    sines = torch.sin(torch.pi * q)
    v_check = torch.sigmoid(steep * sines.prod(-1))
    v_stripe = torch.sigmoid(steep * torch.sin(2.0 * torch.pi * (q * direction).sum(-1)))
    value = torch.where(kind == 0, v_noise, torch.where(kind == 1, v_check, v_stripe))
    c0, c1 = colors.unbind(-2)
    albedo = c0 + (c1 - c0) * value[..., None] + jitter * (2.0 * noise[..., None] - 1.0)
    return albedo.clamp(0.0, 1.0)


def lambert(normal: torch.Tensor, light: torch.Tensor, *, ambient: float) -> torch.Tensor:
    """Lambertian shading factor ``ambient + (1 - ambient) * max(0, n . l)``; (..., 3) -> (..., 1)."""
    return ambient + (1.0 - ambient) * (normal * light).sum(-1, keepdim=True).clamp(min=0.0)
