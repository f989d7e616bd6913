"""Input side of the multiscale convnet: YUV conversion, the pyramid and contrast normalisation.

Farabet et al. (PAMI 2013, section 2.1) feed the shared-weight convnet with the scales of a
Laplacian pyramid of the YUV image: every scale is a Gaussian-smoothed, 2x subsampled copy of
the previous one, and the Y channel of each scale is locally contrast normalised (a local
Gaussian-weighted mean is subtracted, which turns each Gaussian level into a band-pass,
Laplacian level, and the result is divided by the local standard deviation). U and V keep
their low frequencies (colour is what tells sky from water) and are normalised globally with
dataset statistics. A depth channel (Couprie et al., ICLR 2013) is normalised on its own, the
same local way as Y.
"""

from __future__ import annotations

import numbers

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sceneparse.errors import ConfigError, InputError

__all__ = [
    "LaplacianPyramid",
    "gaussian_blur",
    "pyr_down",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "local_contrast_normalize",
    "LocalContrastNorm",
    "uv_statistics",
]


def _check_bchw(x: torch.Tensor, name: str = "input") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{name} must be a BxCxHxW tensor, got {shape}")


def _filter_axis(x: torch.Tensor, taps: list[float], dim: int, stride: int, mode: str) -> torch.Tensor:
    r = len(taps) // 2
    xp = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode=mode)
    span = stride * ((x.shape[dim] - 1) // stride) + 1
    step = (Ellipsis, slice(None, None, stride)) if dim == -1 else (Ellipsis, slice(None, None, stride), slice(None))
    out = xp.narrow(dim, 0, span)[step] * taps[0]
    for i in range(1, len(taps)):
        out.add_(xp.narrow(dim, i, span)[step], alpha=taps[i])
    return out


def _separable(x: torch.Tensor, kernel: torch.Tensor, stride: int = 1) -> torch.Tensor:
    # Shifted, weighted sums along each axis: for the few taps of these kernels this is faster
    # on the CPU than a (depthwise) convolution of a few channels, and it runs as it is on a GPU.
    # kornia.filters.gaussian_blur2d (separable, reflect) gives the same values (max difference
    # 0 on random input, 1.3e-6 in the shipped models' probabilities) but is slower: 9x9 blur of
    # Bx1 images on 2 threads, best of 50, ours vs kornia: 240x320 0.31 vs 0.85 ms (B=1), 1.07
    # vs 1.17 ms (B=8); 360x480 0.42 vs 0.56 ms (B=1), 2.19 vs 2.67 ms (B=8).
    r = kernel.numel() // 2
    h, w = x.shape[-2:]
    mode = "reflect" if r < h and r < w else "replicate"
    taps = kernel.tolist()
    return _filter_axis(_filter_axis(x, taps, -1, stride, mode), taps, -2, stride, mode)


def gaussian_blur(x: torch.Tensor, kernel_size: int = 9, sigma: float = 2.0) -> torch.Tensor:
    """Gaussian blur of every channel with reflected borders (kernel from kornia).

    Example:
        >>> x = torch.rand(2, 3, 20, 30)
        >>> gaussian_blur(x).shape
        torch.Size([2, 3, 20, 30])
    """
    _check_bchw(x)
    if kernel_size % 2 != 1:
        raise ConfigError(f"kernel_size must be odd, got {kernel_size}")
    kernel = kornia.filters.get_gaussian_kernel1d(kernel_size, sigma).flatten()
    return _separable(x, kernel)


_BURT_ADELSON = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with the 5-tap binomial kernel and keep every second pixel (Burt and Adelson).

    An HxW input gives ceil(H/2) x ceil(W/2).

    Not kornia's ``pyrdown``: that one resamples the blurred image bilinearly at half-pixel
    positions (an extra 2x2 average, floor sizes), which the trained models did not see (up to
    0.47 change in their probabilities, 2-7% of labels), and it is 3.6-12x slower here (docs/ARCHITECTURE.md).

    Example:
        >>> pyr_down(torch.ones(1, 1, 7, 10)).shape
        torch.Size([1, 1, 4, 5])
    """
    _check_bchw(x)
    return _separable(x, _BURT_ADELSON, stride=2)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Gaussian pyramid of ``levels`` scales, factor 2, finest first.

    Example:
        >>> [tuple(s.shape) for s in gaussian_pyramid(torch.rand(1, 3, 32, 48), 3)]
        [(1, 3, 32, 48), (1, 3, 16, 24), (1, 3, 8, 12)]
    """
    _check_bchw(x)
    if levels < 1:
        raise ConfigError(f"levels must be >= 1, got {levels}")
    scales = [x]
    for _ in range(levels - 1):
        scales.append(pyr_down(scales[-1]))
    return scales


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Classic Laplacian pyramid (band-pass levels, Gaussian residual last), finest first.

    Summing the levels back with upsampling reconstructs ``x``; kept for analysis and tests.
    The model itself uses :class:`LaplacianPyramid`, which forms the band-pass of Y by local
    contrast normalisation instead, as the paper does.

    Example:
        >>> [tuple(s.shape) for s in laplacian_pyramid(torch.rand(1, 1, 16, 16), 3)]
        [(1, 1, 16, 16), (1, 1, 8, 8), (1, 1, 4, 4)]
    """
    gauss = gaussian_pyramid(x, levels)
    bands = []
    for fine, coarse in zip(gauss[:-1], gauss[1:]):
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(fine - up)
    bands.append(gauss[-1])
    return bands


def local_contrast_normalize(
    x: torch.Tensor, kernel_size: int = 9, sigma: float = 2.0, eps: float = 1e-4
) -> torch.Tensor:
    """Subtractive then divisive local normalisation of every channel (Jarrett et al. 2009).

    The local mean and standard deviation are Gaussian-weighted. As in Torch7's
    ``SpatialContrastiveNormalization``, the divisor is ``max(local_std, mean(local_std))``
    so that flat regions are not amplified into noise.

    Example:
        >>> y = local_contrast_normalize(torch.full((1, 1, 12, 12), 0.7))
        >>> float(y.abs().max()) < 1e-5
        True
    """
    _check_bchw(x)
    centred = x - gaussian_blur(x, kernel_size, sigma)
    std = gaussian_blur(centred * centred, kernel_size, sigma).clamp_min(0).sqrt()
    floor = std.mean(dim=(-2, -1), keepdim=True).clamp_min(eps)
    return centred / torch.maximum(std, floor)


class LocalContrastNorm(nn.Module):
    """Module form of :func:`local_contrast_normalize`."""

    def __init__(self, kernel_size: int = 9, sigma: float = 2.0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return local_contrast_normalize(x, self.kernel_size, self.sigma)


class LaplacianPyramid(nn.Module):
    """RGB(-D) batch -> list of normalised YUV(-D) scales, finest first.

    Args:
        levels: number of scales (factor 2 between them).
        in_channels: 3 for RGB in [0, 1], 4 for RGB plus depth in metres.
        uv_mean: dataset mean of U and V (after RGB -> YUV of [0, 1] images).
        uv_std: dataset standard deviation of U and V.
        lcn_kernel: size of the Gaussian window of the local normalisation.

    Example:
        >>> pyr = LaplacianPyramid(levels=3)
        >>> [tuple(s.shape) for s in pyr(torch.rand(2, 3, 64, 80))]
        [(2, 3, 64, 80), (2, 3, 32, 40), (2, 3, 16, 20)]
    """

    def __init__(
        self,
        levels: int = 3,
        in_channels: int = 3,
        uv_mean: tuple[float, float] = (0.0, 0.0),
        uv_std: tuple[float, float] = (0.1, 0.1),
        lcn_kernel: int = 9,
    ) -> None:
        super().__init__()
        if in_channels not in (3, 4):
            raise ConfigError(f"in_channels must be 3 (RGB) or 4 (RGB-D), got {in_channels}")
        self.levels = levels
        self.in_channels = in_channels
        if (
            isinstance(lcn_kernel, bool)
            or not isinstance(lcn_kernel, numbers.Integral)
            or lcn_kernel < 1
            or lcn_kernel % 2 != 1
        ):
            raise ConfigError(f"lcn_kernel must be an odd whole number of pixels, got {lcn_kernel!r}")  # not at forward
        self.lcn = LocalContrastNorm(lcn_kernel, sigma=lcn_kernel / 4)
        self.register_buffer("uv_mean", torch.tensor(uv_mean, dtype=torch.float32).view(1, 2, 1, 1))
        self.register_buffer("uv_std", torch.tensor(uv_std, dtype=torch.float32).view(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_bchw(x)
        if x.shape[1] != self.in_channels:
            raise InputError(
                f"expected {self.in_channels} input channels "
                f"({'RGB' if self.in_channels == 3 else 'RGB + depth'}), got {x.shape[1]}"
            )
        yuv = kornia.color.rgb_to_yuv(x[:, :3])
        if self.in_channels == 4:
            yuv = torch.cat([yuv, x[:, 3:4]], dim=1)
        out = []
        for scale in gaussian_pyramid(yuv, self.levels):
            y = self.lcn(scale[:, :1])
            uv = (scale[:, 1:3] - self.uv_mean) / self.uv_std
            parts = [y, uv]
            if self.in_channels == 4:
                parts.append(self.lcn(scale[:, 3:4]))
            out.append(torch.cat(parts, dim=1))
        return out


def uv_statistics(dataset, max_samples: int = 200) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of U and V (of RGB in [0, 1] -> YUV) over up to
    ``max_samples`` raw samples spread evenly over ``dataset``: the global normalisation of
    :class:`LaplacianPyramid`.

    Args:
        dataset: samples as dicts with an HxWx3 uint8 ``image``.
        max_samples: how many samples to read at most.
    """
    if len(dataset) == 0:
        raise InputError("cannot compute U/V statistics of an empty dataset")
    n = min(len(dataset), max_samples)
    idx = np.linspace(0, len(dataset) - 1, n).round().astype(int)
    s1 = torch.zeros(2, dtype=torch.float64)
    s2 = torch.zeros(2, dtype=torch.float64)
    count = 0
    for i in idx:
        img = torch.from_numpy(np.ascontiguousarray(dataset[int(i)]["image"])).permute(2, 0, 1)
        uv = kornia.color.rgb_to_yuv(img[None].float() / 255)[0, 1:].reshape(2, -1).double()
        s1 += uv.sum(1)
        s2 += (uv * uv).sum(1)
        count += uv.shape[1]
    mean = s1 / count
    std = (s2 / count - mean * mean).clamp_min(1e-8).sqrt()
    return mean.tolist(), std.tolist()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right of ``x`` so both sides divide by ``multiple``.

    Returns the padded tensor and the original (height, width) to crop back to.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflection needs the pad to be smaller than the side; replicate beyond that.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
