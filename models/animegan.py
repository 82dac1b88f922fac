"""AnimeGANv2 generator, layer for layer the PyTorch port whose checkpoints we load strictly.

Upstream: github.com/bryandlee/animegan2-pytorch (model.py). The module names below are the
checkpoint's keys, so renaming anything breaks `load_state_dict(strict=True)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import Registry, WeightsEntry
from models.tiling import TileAware
from models.transforms import ImageTransforms


class ReflectionPad(nn.ReflectionPad2d):
    """Pads in its input's dtype. CPU autocast runs reflection padding in float32: a bf16 input
    would be copied up, padded, and copied down again by the next conv (over half of a forward
    pass, docs/performance.md). Padding only copies values, so the conv sees the same bits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.pad(x, self.padding, mode="reflect")


class ConvNormLReLU(nn.Sequential):
    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | tuple[int, int, int, int] = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(
            ReflectionPad(padding),
            nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=0, groups=groups, bias=bias),
            nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class InvertedResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion_ratio: int = 2) -> None:
        super().__init__()
        self.use_res_connect = in_ch == out_ch
        bottleneck = in_ch * expansion_ratio
        self.layers = nn.Sequential(
            ConvNormLReLU(in_ch, bottleneck, kernel_size=1, padding=0),
            ConvNormLReLU(bottleneck, bottleneck, groups=bottleneck, bias=True),
            nn.Conv2d(bottleneck, out_ch, kernel_size=1, bias=False),
            nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.use_res_connect else out


class AnimeGenerator(TileAware):
    """Maps RGB in [-1, 1], NCHW, to RGB in [-1, 1]; H and W multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.block_a = nn.Sequential(
            ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            ConvNormLReLU(32, 64, stride=2, padding=(0, 1, 0, 1)),
            ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(
            ConvNormLReLU(64, 128, stride=2, padding=(0, 1, 0, 1)),
            ConvNormLReLU(128, 128),
        )
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256, 2),
            InvertedResBlock(256, 256, 2),
            InvertedResBlock(256, 256, 2),
            InvertedResBlock(256, 256, 2),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(ConvNormLReLU(128, 128), ConvNormLReLU(128, 128))
        self.block_e = nn.Sequential(
            ConvNormLReLU(128, 64),
            ConvNormLReLU(64, 64),
            ConvNormLReLU(64, 32, kernel_size=7, padding=3),
        )
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, kernel_size=1, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block_a(x)
        half_size = out.shape[-2:]
        out = self.block_c(self.block_b(out))
        out = self._upsample(out, half_size, x.shape[-2:])
        out = self.block_d(out)
        out = self._upsample(out, x.shape[-2:], x.shape[-2:])
        return self.out_layer(self.block_e(out))

    def _upsample(self, x: torch.Tensor, size: Sequence[int], full: Sequence[int]) -> torch.Tensor:
        """Bilinear, corners aligned (the upstream default, which keeps odd sizes exact). Corners
        aligned scale by (source - 1) / (target - 1), which differs between a tile and its image:
        a tile samples where the whole image would, or its features drift by pixels across it."""
        if self.tile is None:
            # Back to x's dtype, as the next conv would cast it, before padding copies it at full size.
            return F.interpolate(x, tuple(size), mode="bilinear", align_corners=True).to(x.dtype)
        axes = []
        for axis in (0, 1):
            whole, offset = self.tile.size[axis], self.tile.offset[axis]
            source, target = x.shape[2 + axis], size[axis]
            source_scale, target_scale = source / full[axis], target / full[axis]
            at = torch.arange(target, dtype=torch.float32, device=x.device) + offset * target_scale
            sampled = at * (whole * source_scale - 1) / (whole * target_scale - 1) - offset * source_scale
            axes.append(2 * sampled / max(1, source - 1) - 1)
        rows, columns = torch.meshgrid(axes[0], axes[1], indexing="ij")
        grid = torch.stack([columns, rows], dim=-1)[None].expand(x.shape[0], -1, -1, -1)
        # In float32: a bfloat16 grid would place samples up to a pixel off.
        sampled = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
        return sampled.to(x.dtype)


@dataclass(frozen=True)
class AnimeTransforms(ImageTransforms):
    """RGB in [-1, 1] in, tanh's [-1, 1] out, at any height and width."""

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        # NHWC uint8 permuted to NCHW is already channels_last in memory: no copy.
        return batch.permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def to_output(self, output: torch.Tensor) -> torch.Tensor:
        return ((output.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


ANIME_LICENCE = (
    "Code MIT (bryandlee/animegan2-pytorch). Weights derived from AnimeGANv2 "
    "(TachibanaYoshino), released for non-commercial use only."
)
_BASE_URL = "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights"

ANIME_WEIGHTS: Registry[WeightsEntry] = Registry(
    "anime style",
    (
        WeightsEntry(
            name=name,
            architecture="animeganv2_generator",
            build=AnimeGenerator,
            transforms=AnimeTransforms(side=512, stride=4),
            filename=f"{name}.pt",
            url=f"{_BASE_URL}/{name}.pt",
            licence=ANIME_LICENCE,
            git_blob_sha1=sha1,
        )
        for name, sha1 in (
            ("face_paint_512_v2", "d75102f8f201ddaf8dbe6b913b1a97585b55f838"),
            ("face_paint_512_v1", "19c1a1da4d9580186109a2b055d91044e5127de6"),
            ("celeba_distill", "3b7ea61b02254980831cc3bc77af30666dbc999c"),
            ("paprika", "58086c9db9fc7a9e5c2876ca31b8079599352643"),
        )
    ),
    default="face_paint_512_v2",
)
