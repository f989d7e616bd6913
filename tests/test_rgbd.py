"""RGB-D parsing end to end on the real NYU v2 frames: train a few steps, evaluate, parse."""

import numpy as np
import pytest
import torch

from sceneparse.cli import main
from sceneparse.data import NYUDepthV2
from sceneparse.data.depth import fill_depth, read_depth_png
from sceneparse.io import read_image
from sceneparse.pipeline import SceneParser


@pytest.mark.slow
@pytest.mark.parametrize("target", ["4", "13"])
def test_feature_rgbd_train_evaluate_parse(tmp_path, nyu_frames, target):
    run = tmp_path / "run"
    args = ["train", "--model", "msconvnet_rgbd", "--model-args", '{"width": 16, "hidden": 16}',
            "--dataset", "nyuv2", "--data-root", str(nyu_frames), "--target", target, "--num-folds", "1",
            "--epochs", "2", "--batch-size", "2", "--crop-size", "96", "128", "--scale-range", "0.2", "0.3",
            "--threads", "2", "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # 8 labelled frames, batches of 2, two epochs

    parser = SceneParser.from_pretrained(str(run / "final.pt"))
    assert parser.in_channels == 4 and parser.num_classes == int(target)
    rgb = read_image(nyu_frames / "rgb" / "0001.png")
    depth = read_depth_png(nyu_frames / "depth" / "0001.png")
    result = parser.parse(rgb, depth=depth)
    assert result.labels.shape == (480, 640) and result.labels.max() < int(target)
    assert np.allclose(result.probs.sum(0), 1, atol=1e-4)
    # depth matters to the model: a different depth map changes the class scores
    other = parser.predict_probs(rgb, depth=np.flip(depth, 1).copy())
    assert not np.allclose(other, result.probs, atol=1e-4)
    # missing readings (0) are filled before the network, as documented: the network sees the
    # nearest-filled depth, not the zeros ("none" passes them on, and scores differently)
    holed = depth.copy()
    holed[:, :40] = 0
    holed_probs = parser.predict_probs(rgb, depth=holed)
    assert np.allclose(holed_probs, parser.predict_probs(rgb, depth=fill_depth(holed, "nearest")), atol=1e-6)
    parser.depth_fill = "none"
    assert not np.allclose(holed_probs, parser.predict_probs(rgb, depth=holed), atol=1e-4)
    parser.depth_fill = "nearest"
    with pytest.raises(ValueError, match="RGB-D model"):
        parser.parse(rgb)

    labelled = tmp_path / "labelled"
    rgb_file = str(nyu_frames / "rgb" / "0001.png")
    assert main(["label", rgb_file, "--model", str(run / "final.pt"), "--depth", str(nyu_frames / "depth"),
                 "--out", str(labelled), "--no-progress"]) == 0  # fmt: skip
    assert (labelled / "0001_labels.png").is_file() and (labelled / "0001_overlay.jpg").is_file()
    assert main(["label", rgb_file, "--model", str(run / "final.pt"), "--out", str(labelled / "x")]) == 1  # no depth

    out = tmp_path / "eval"
    evaluate = ["evaluate", "--model", str(run / "final.pt"), "--data-root", str(nyu_frames), "--no-progress"]
    assert main([*evaluate, "--split", "test", "--out", str(out)]) == 1  # trained on all 8 frames: none unseen
    assert main([*evaluate, "--split", "all", "--out", str(out)]) == 0  # the pipeline, on its training frames
    assert "| 8 |" in (out / "metrics.md").read_text()


def test_feature_rgbd_batches_carry_depth(nyu_frames):
    from sceneparse.data.presets import train_preset

    ds = NYUDepthV2(nyu_frames, split="all", target="4", transform=train_preset((64, 80), (0.2, 0.3)))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 80) and batch["depth"].shape == (4, 1, 64, 80)
    assert batch["depth_valid"].dtype == torch.bool and batch["label"].shape == (4, 64, 80)
