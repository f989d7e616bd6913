"""Building blocks of the encoders."""

from __future__ import annotations

from torch import nn

__all__ = ["ConvBNReLU", "ResidualBlock"]


class ConvBNReLU(nn.Sequential):
    """3x3 (or ``kernel_size``) convolution, batch normalisation, ReLU; 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """A dilated 3x3 convolution with batch norm, added to its input, then ReLU.

    Dilation widens the receptive field at no cost in resolution or multiply-adds.
    """

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.bn(self.conv(x)))
