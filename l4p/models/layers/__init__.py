"""Building blocks of the video encoder, one component per file."""

from l4p.models.layers.attention import Attention
from l4p.models.layers.block import Block
from l4p.models.layers.mlp import Mlp
from l4p.models.layers.patch_embed import PatchEmbed3d
from l4p.models.layers.pos_embed import resample_pos_table, sinusoid_table

__all__ = ["Attention", "Block", "Mlp", "PatchEmbed3d", "resample_pos_table", "sinusoid_table"]
