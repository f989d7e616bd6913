"""LR-ASPP MobileNetV3-Large (sceneparse/models/lraspp.py), the peer the multiscale convnet is
measured against: torchvision's segmentation layout, rebuilt."""

import torch

from sceneparse import create_model


def test_feature_layout_of_torchvisions_lraspp_mobilenet_v3_large():
    model = create_model("lraspp_mobilenetv3", num_classes=21).eval()
    # torchvision's documented size of lraspp_mobilenet_v3_large (21 classes)
    assert sum(p.numel() for p in model.parameters()) == 3_221_538
    x = torch.rand(1, 3, 240, 320)
    with torch.no_grad():
        low = model.low(x)
        high = model.high(low)
        coarse = model.forward_coarse(x)
    assert low.shape == (1, 40, 30, 40)  # stride 8
    assert high.shape == (1, 960, 15, 20)  # stride 16: the last stage dilated, not strided
    assert coarse.shape == (1, 21, 30, 40) and model.pretrained_cfg().output_stride == 8


def test_feature_four_channels_take_depth_in_metres():
    model = create_model("lraspp_mobilenetv3", num_classes=4, in_channels=4).eval()
    x = torch.rand(1, 4, 48, 64)
    x[:, 3] *= 4
    with torch.no_grad():
        assert model(x).shape == (1, 4, 48, 64)
    assert model.pretrained_cfg().normalization["mean"][3] == 2.5
