"""The shipped indoor-geometry models (RGB and RGB-D) load and label real 7-Scenes frames."""

import numpy as np
import pytest
from optional import require

from sceneparse import SceneParser
from sceneparse.errors import InputError
from sceneparse.pipeline import list_pretrained

CLASSES = ("floor", "support", "vertical", "other")
VAL_FRAME = "frame-000370"  # in the validation part (the last quarter) of the sequence


@pytest.fixture(scope="module")
def frame(sevenscenes_path):
    from sceneparse.data.depth import read_depth_png
    from sceneparse.io import read_image

    return read_image(sevenscenes_path / f"{VAL_FRAME}.color.jpg"), read_depth_png(
        sevenscenes_path / f"{VAL_FRAME}.depth.png"
    )


@pytest.mark.parametrize("name", ["indoor-geometry", "indoor-geometry-rgbd"])
def test_feature_shipped_geometry_models_label_a_real_frame(name, frame):
    assert name in list_pretrained()
    rgb, depth = frame
    parser = SceneParser.from_pretrained(name)
    assert parser.class_names == CLASSES
    assert parser.meta["train_config"]["dataset"] == "indoor-geometry"
    result = parser.parse(rgb, depth=depth) if name.endswith("rgbd") else parser.parse(rgb)
    assert result.labels.shape == rgb.shape[:2] and result.probs.shape == (4, *rgb.shape[:2])
    # the frame looks down at the table: its middle is support, the wall at the top vertical
    h, w = rgb.shape[:2]
    middle = result.labels[h // 2 : 3 * h // 4, w // 4 : 3 * w // 4]
    assert (middle == CLASSES.index("support")).mean() > 0.8
    top = result.labels[: h // 6]  # the kitchen wall and cabinets behind: vertical, or other (things on shelves)
    assert (top == CLASSES.index("vertical")).mean() > 0.4 and (top < 2).mean() < 0.1
    if name.endswith("rgbd"):
        with pytest.raises(InputError, match="depth"):
            parser.parse(rgb)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fsv_accuracy"), [("indoor-geometry", 0.87), ("indoor-geometry-rgbd", 0.92)])
def test_feature_shipped_geometry_models_agree_with_depth_on_held_out_frames(name, fsv_accuracy, sevenscenes_path):
    """The figures of docs/MODEL_ZOO.md (88.2 and 93.2 % F/S/V accuracy, support IoU 83.8 and 89.7)."""
    require("open3d", "pip install 'sceneparse[3d]'")
    from sceneparse.data import dataset_for_model
    from sceneparse.evaluate import evaluate_parser

    parser = SceneParser.from_pretrained(name)
    val = dataset_for_model(parser.meta["train_config"], "val", in_channels=parser.in_channels,
                            root=sevenscenes_path, class_names=parser.class_names)  # fmt: skip
    assert len(val) == 50 and val.ids[0] == "frame-000300"
    cm = np.asarray(evaluate_parser(parser, val, progress=False)["confusion_matrix"], np.float64)
    fsv = slice(0, 3)  # accuracy over the floor, support and vertical pixels
    assert cm[fsv, fsv].trace() / cm[fsv].sum() > fsv_accuracy
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert iou[1] > 0.8


@pytest.mark.parametrize(
    ("name", "config"),
    [("indoor-geometry", "msconvnet_indoor_geometry_transfer.yaml"),
     ("indoor-geometry-rgbd", "msconvnet_rgbd_indoor_geometry.yaml")],
)  # fmt: skip
def test_feature_shipped_geometry_models_were_trained_by_their_config(name, config):
    """docs/MODEL_ZOO.md's command for each shipped model, ``sceneparse train --config FILE``, trains with the options
    its weights record (options added to the trainer since a model was trained are not in its record); where the run
    wrote its files and its progress bars aside."""
    from pathlib import Path

    from sceneparse.cli.train import train_config_from_argv

    cfg = train_config_from_argv(["--config", str(Path(__file__).parents[2] / "configs" / config)])
    recorded = SceneParser.from_pretrained(name).meta["train_config"]
    aside = {"out", "progress"}
    assert {k: v for k, v in recorded.items() if k not in aside} == {k: cfg[k] for k in recorded if k not in aside}
