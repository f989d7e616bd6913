import pytest
import torch
import torch.nn.functional as F

from sceneparse.models.pyramid import (
    LaplacianPyramid,
    gaussian_blur,
    gaussian_pyramid,
    laplacian_pyramid,
    local_contrast_normalize,
    pad_to_multiple,
    pyr_down,
    uv_statistics,
)


def test_cardinality_gaussian_pyramid_odd_size():
    scales = gaussian_pyramid(torch.rand(2, 3, 37, 53), 4)
    assert [tuple(s.shape[-2:]) for s in scales] == [(37, 53), (19, 27), (10, 14), (5, 7)]


def test_feature_pyr_down_known_values():
    # The 5-tap binomial kernel keeps constants and halves the size (ceil for odd sizes).
    x = torch.full((1, 1, 9, 12), 3.0)
    y = pyr_down(x)
    assert y.shape == (1, 1, 5, 6)
    assert torch.allclose(y, torch.full_like(y, 3.0))
    # An impulse at an even position spreads to the kernel's centre weight squared.
    imp = torch.zeros(1, 1, 16, 16)
    imp[0, 0, 8, 8] = 1.0
    assert pyr_down(imp)[0, 0, 4, 4].item() == pytest.approx((6 / 16) ** 2)


def test_feature_gaussian_blur_preserves_mean_and_smooths():
    x = torch.rand(1, 2, 40, 40)
    y = gaussian_blur(x, 9, 2.0)
    assert y.shape == x.shape
    assert y.std() < x.std() * 0.5
    assert y.mean().item() == pytest.approx(x.mean().item(), abs=0.02)


def test_feature_laplacian_pyramid_reconstructs():
    x = torch.rand(1, 3, 32, 48)
    bands = laplacian_pyramid(x, 3)
    rec = bands[-1]
    for band in reversed(bands[:-1]):
        rec = band + F.interpolate(rec, size=band.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(rec, x, atol=1e-5)
    # Band-pass levels have (near) zero mean; the residual keeps the image mean.
    assert abs(bands[0].mean().item()) < 0.02
    assert bands[-1].mean().item() == pytest.approx(x.mean().item(), abs=0.02)


def test_feature_local_contrast_normalisation():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 64, 64)
    y = local_contrast_normalize(x, 9, 2.0)
    # Locally zero mean and about unit variance away from the borders.
    inner = y[..., 8:-8, 8:-8]
    assert abs(inner.mean().item()) < 0.05
    assert 0.7 < inner.std().item() < 1.3
    # Invariant to brightness and contrast changes of the whole image.
    assert torch.allclose(local_contrast_normalize(0.2 * x + 0.5, 9, 2.0), y, atol=1e-4)
    # A constant image normalises to zero, not to noise.
    assert local_contrast_normalize(torch.full((1, 1, 20, 20), 0.3)).abs().max() < 1e-5
    # The divisor is floored at the image's mean local deviation: a faint patch in a textured
    # image stays faint instead of being blown up to unit contrast.
    z = x.clone()
    z[..., :32] = 0.5 + 0.01 * (x[..., :32] - 0.5)
    out = local_contrast_normalize(z, 9, 2.0)
    assert out[..., 8:24, 8:24].std() < 0.3 * out[..., 8:24, 40:56].std()


def test_cardinality_laplacian_pyramid_module_rgbd():
    pyr = LaplacianPyramid(levels=3, in_channels=4)
    x = torch.rand(2, 4, 48, 64)
    x[:, 3] *= 5  # depth in metres
    scales = pyr(x)
    assert [tuple(s.shape) for s in scales] == [(2, 4, 48, 64), (2, 4, 24, 32), (2, 4, 12, 16)]


def test_feature_uv_global_normalisation():
    pyr = LaplacianPyramid(levels=1, uv_mean=(0.1, -0.2), uv_std=(0.5, 0.25))
    x = torch.rand(1, 3, 16, 16)
    out = pyr(x)[0]
    import kornia

    uv = kornia.color.rgb_to_yuv(x)[:, 1:]
    expected = (uv - torch.tensor([0.1, -0.2]).view(1, 2, 1, 1)) / torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)
    assert torch.allclose(out[:, 1:3], expected, atol=1e-6)


def test_exception_pyramid_bad_input():
    with pytest.raises(ValueError, match="input channels"):
        LaplacianPyramid(in_channels=3)(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match="BxCxHxW"):
        gaussian_pyramid(torch.rand(3, 16, 16), 2)
    with pytest.raises(ValueError, match="in_channels"):
        LaplacianPyramid(in_channels=2)
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(torch.rand(1, 1, 8, 8), 4)


def test_feature_pad_to_multiple():
    x = torch.rand(1, 3, 37, 50)
    y, size = pad_to_multiple(x, 16)
    assert size == (37, 50) and y.shape[-2:] == (48, 64)
    assert torch.equal(y[..., :37, :50], x)
    tiny, _ = pad_to_multiple(torch.rand(1, 3, 3, 5), 16)  # pad larger than the side
    assert tiny.shape[-2:] == (16, 16)


def test_feature_uv_statistics_of_raw_samples():
    import kornia
    import numpy as np

    rng = np.random.default_rng(0)
    samples = [{"image": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)} for _ in range(3)]
    mean, std = uv_statistics(samples)
    uv = torch.cat(
        [kornia.color.rgb_to_yuv(torch.from_numpy(s["image"]).permute(2, 0, 1)[None].float() / 255)[0, 1:]
         for s in samples], dim=-1,
    ).reshape(2, -1).double()  # fmt: skip
    assert mean == pytest.approx(uv.mean(1).tolist(), abs=1e-9)
    assert std == pytest.approx(uv.std(1, unbiased=False).tolist(), abs=1e-9)
    # At most max_samples, spread over the whole set: the first and the last are read.
    assert uv_statistics(samples, max_samples=2) == uv_statistics([samples[0], samples[2]])
    with pytest.raises(ValueError, match="empty"):
        uv_statistics([])


def test_feature_gaussian_blur_matches_kornia():
    # Ours is kept for speed (see _separable); it must compute what kornia's blur computes.
    import kornia

    x = torch.rand(2, 1, 30, 41)
    expected = kornia.filters.gaussian_blur2d(x, (9, 9), (2.25, 2.25), border_type="reflect")
    assert torch.allclose(gaussian_blur(x, 9, 2.25), expected, atol=1e-6)
