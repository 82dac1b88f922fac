"""U²-Net and U²-NetP (Qin et al. 2020), with the module names of the official checkpoints.

Upstream: github.com/xuebinqin/U-2-Net (model/u2net.py, Apache-2.0). RSU7..RSU4 and RSU4F share
one class here; the attribute names (`rebnconv3d`, `stage4d`, `side2`...) are the checkpoint keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from models.registry import Registry, WeightsEntry
from models.transforms import ImageTransforms


class REBNCONV(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.relu_s1(self.bn_s1(self.conv_s1(x))))

    def fold_batch_norm(self) -> None:
        """Inference only: the batch norm's fixed affine map goes into the conv's weights and bias, a
        pass over every activation less (batch norm was 12% of a U²-Net forward in py-spy)."""
        if isinstance(self.bn_s1, nn.BatchNorm2d):
            self.conv_s1 = fuse_conv_bn_eval(self.conv_s1, self.bn_s1)
            self.bn_s1 = nn.Identity()  # type: ignore[assignment]


def _upsample_like(src: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.interpolate(src, size=target.shape[2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block of `height` levels; `dilated` is the RSU4F variant (no pooling)."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, *, dilated: bool = False) -> None:
        super().__init__()
        self.height = height
        self.dilated = dilated
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for level in range(1, height + 1):
            rate = 2 ** (level - 1) if dilated else (2 if level == height else 1)
            self.add_module(f"rebnconv{level}", REBNCONV(out_ch if level == 1 else mid_ch, mid_ch, rate))
        for level in range(height - 1, 0, -1):
            rate = 2 ** (level - 1) if dilated else 1
            self.add_module(f"rebnconv{level}d", REBNCONV(mid_ch * 2, out_ch if level == 1 else mid_ch, rate))

    def _conv(self, name: str) -> REBNCONV:
        return cast(REBNCONV, getattr(self, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        encoded: list[torch.Tensor] = []
        hx = hxin
        for level in range(1, self.height):
            hx = self._conv(f"rebnconv{level}")(hx)
            encoded.append(hx)
            if not self.dilated and level < self.height - 1:
                hx = self.pool(hx)
        hx = self._conv(f"rebnconv{self.height}")(hx)
        for level in range(self.height - 1, 0, -1):
            skip = encoded[level - 1]
            if not self.dilated and hx.shape[2:] != skip.shape[2:]:
                hx = _upsample_like(hx, skip)
            hx = self._conv(f"rebnconv{level}d")(torch.cat((hx, skip), 1))
        return cast(torch.Tensor, hx + hxin)


@dataclass(frozen=True)
class _Stage:
    height: int
    in_ch: int
    mid_ch: int
    out_ch: int
    dilated: bool = False

    def build(self) -> RSU:
        return RSU(self.height, self.in_ch, self.mid_ch, self.out_ch, dilated=self.dilated)


class U2Net(nn.Module):
    """Six encoder stages, five decoder stages, six side outputs fused by `outconv`.

    forward: RGB float NCHW (see U2NetTransforms) -> the fused prediction, after sigmoid, N1HW in (0, 1):
    the first of the official model's seven outputs, the only one inference uses.
    """

    def __init__(self, encoder: list[_Stage], decoder: list[_Stage], out_ch: int = 1) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for index, stage in enumerate(encoder, start=1):
            self.add_module(f"stage{index}", stage.build())
        for index, stage in zip(range(len(decoder), 0, -1), decoder, strict=True):
            self.add_module(f"stage{index}d", stage.build())
        side_channels = [stage.out_ch for stage in reversed(decoder)] + [encoder[-1].out_ch]
        for index, channels in enumerate(side_channels, start=1):
            self.add_module(f"side{index}", nn.Conv2d(channels, out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(len(side_channels) * out_ch, out_ch, 1)
        self.depth = len(encoder)

    def _module(self, name: str) -> nn.Module:
        return cast(nn.Module, getattr(self, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded: list[torch.Tensor] = []
        hx = x
        for index in range(1, self.depth + 1):
            hx = self._module(f"stage{index}")(hx)
            encoded.append(hx)
            if index < self.depth:
                hx = self.pool(hx)
        decoded = [hx]  # deepest first: hx6, hx5d, ..., hx1d
        for index in range(self.depth - 1, 0, -1):
            skip = encoded[index - 1]
            hx = self._module(f"stage{index}d")(torch.cat((_upsample_like(hx, skip), skip), 1))
            decoded.append(hx)
        decoded.reverse()
        sides = [self._module(f"side{index}")(features) for index, features in enumerate(decoded, start=1)]
        sides = [sides[0]] + [_upsample_like(side, sides[0]) for side in sides[1:]]
        return torch.sigmoid(self.outconv(torch.cat(sides, 1)))


def u2net_full(in_ch: int = 3, out_ch: int = 1) -> U2Net:
    """U2NET(3, 1): 44.0 M parameters."""
    return U2Net(
        encoder=[
            _Stage(7, in_ch, 32, 64),
            _Stage(6, 64, 32, 128),
            _Stage(5, 128, 64, 256),
            _Stage(4, 256, 128, 512),
            _Stage(4, 512, 256, 512, dilated=True),
            _Stage(4, 512, 256, 512, dilated=True),
        ],
        decoder=[
            _Stage(4, 1024, 256, 512, dilated=True),
            _Stage(4, 1024, 128, 256),
            _Stage(5, 512, 64, 128),
            _Stage(6, 256, 32, 64),
            _Stage(7, 128, 16, 64),
        ],
        out_ch=out_ch,
    )


def u2net_lite(in_ch: int = 3, out_ch: int = 1) -> U2Net:
    """U2NETP(3, 1): 1.1 M parameters."""
    return U2Net(
        encoder=[
            _Stage(7, in_ch, 16, 64),
            _Stage(6, 64, 16, 64),
            _Stage(5, 64, 16, 64),
            _Stage(4, 64, 16, 64),
            _Stage(4, 64, 16, 64, dilated=True),
            _Stage(4, 64, 16, 64, dilated=True),
        ],
        decoder=[
            _Stage(4, 128, 16, 64, dilated=True),
            _Stage(4, 128, 16, 64),
            _Stage(5, 128, 16, 64),
            _Stage(6, 128, 16, 64),
            _Stage(7, 128, 16, 64),
        ],
        out_ch=out_ch,
    )


@dataclass(frozen=True)
class U2NetTransforms(ImageTransforms):
    """As the official test script prepares its input: side x side, each image divided by its own
    maximum, then ImageNet mean and std; the prediction min-max normalised to [0, 1] per image."""

    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.permute(0, 3, 1, 2).float()
        peak = x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x / peak - mean) / std

    def to_output(self, output: torch.Tensor) -> torch.Tensor:
        prediction = output[:, 0].float()
        low = prediction.amin(dim=(1, 2), keepdim=True)
        high = prediction.amax(dim=(1, 2), keepdim=True)
        return (prediction - low) / (high - low).clamp_min(1e-8)


U2NET_LICENCE = "Apache-2.0 (xuebinqin/U-2-Net), code and weights"
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="

U2NET_WEIGHTS: Registry[WeightsEntry] = Registry(
    "matting model",
    (
        WeightsEntry(
            name=name,
            architecture=architecture,
            build=build,
            transforms=U2NetTransforms(side=320, square=True),
            filename=f"{name}.pth",
            url=_DRIVE + drive_id,
            licence=U2NET_LICENCE,
        )
        for name, architecture, build, drive_id in (
            ("u2net_human_seg", "u2net", u2net_full, "1m_Kgs91b21gayc2XLW0ou8yugAIadWVP"),
            ("u2net", "u2net", u2net_full, "1ao1ovG1Qtx4b7EoskHXmi2E9rp5CHLcZ"),
            ("u2netp", "u2netp", u2net_lite, "1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy"),
        )
    ),
    default="u2net_human_seg",
)
