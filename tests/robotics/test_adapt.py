"""Online adaptation (sceneparse/robotics/adapt.py) on real 7-Scenes frames: only the
classifier learns, within the time budget, through the frame loop's hooks."""

import itertools

import pytest
import torch
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from sceneparse import SceneParser, run  # noqa: E402
from sceneparse.robotics.adapt import OnlineAdapter  # noqa: E402
from sceneparse.sources import open_source  # noqa: E402


@pytest.fixture(scope="module")
def frames(sevenscenes_path):
    return list(itertools.islice(open_source(sevenscenes_path), 5))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_feature_only_the_classifier_learns(frames):
    parser = SceneParser.from_pretrained("indoor-geometry")
    before = _state(parser.model)
    adapter = OnlineAdapter(parser, budget_ms=10_000, ground_frames=2)
    stats = run(parser, frames, [], hooks=[adapter], progress=False)
    assert stats["frames"] == 5
    summary = adapter.summary()
    assert summary["frames"] == 4 and summary["steps"] == 12 and summary["skipped"] == 1  # 1st frame: the ground
    after = parser.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("classifier.") for k in changed)
    assert not any("running" in k for k in changed)  # batch norm kept its statistics
    assert not parser.model.training


def test_feature_time_budget_stops_the_steps(frames):
    parser = SceneParser.from_pretrained("indoor-geometry")
    adapter = OnlineAdapter(parser, budget_ms=0.001, ground_frames=1)
    for f in frames[:3]:
        adapter(f)
    assert adapter.frames == 3 and adapter.steps == 3  # one step each: the labels alone used up the budget


def test_exception_only_rgb_geometry_models_adapt():
    with pytest.raises(ValueError, match="needs a geometry model"):
        OnlineAdapter(SceneParser.from_pretrained("stanford-background"))
    with pytest.raises(ValueError, match="takes depth as input"):
        OnlineAdapter(SceneParser.from_pretrained("indoor-geometry-rgbd"))


def test_feature_label_adapt_command(sevenscenes_path, tmp_path, capsys):
    from sceneparse.cli import main

    args = ["label", str(sevenscenes_path), "--max-frames", "10", "--no-progress", "--temporal", "none", "--adapt"]
    assert main([*args, "--model", "indoor-geometry", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "online adaptation: learnt from 3 frames" in out  # the first 8 frames gather the ground
    assert main([*args, "--out", str(tmp_path / "b")]) == 1  # the default outdoor model cannot adapt
