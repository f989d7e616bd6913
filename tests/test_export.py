"""ONNX export (sceneparse/export.py, sceneparse export) and SceneParser.from_onnx, on real images."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from sceneparse.cli import main
from sceneparse.errors import InputError, NotFoundError
from sceneparse.export import OPSET, quantize_onnx, read_onnx_metadata
from sceneparse.pipeline import SceneParser


def _agreement(a, b) -> tuple[float, float]:
    return float((a.labels == b.labels).mean()), float(np.abs(a.probs - b.probs).max())


@pytest.fixture(scope="module")
def torch_parser():
    return SceneParser.from_pretrained("stanford-background")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "nested" / "stanford.onnx"
    assert main(["export", "--model", "stanford-background", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def onnx_parser(onnx_path):
    return SceneParser.from_onnx(onnx_path, threads=2)


@pytest.fixture(scope="module")
def heldout(torch_parser, stanford_path):
    from sceneparse.evaluate import heldout_dataset

    ds = heldout_dataset(torch_parser)
    return [ds[i] for i in np.linspace(0, len(ds) - 1, 12).round().astype(int)]


def test_smoke_checker_opset_and_dynamic_axes(onnx_path):
    import onnx

    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == OPSET
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3], f"batch, height and width must be dynamic, got {dims}"
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_feature_metadata_read_back(onnx_path, torch_parser, onnx_parser):
    md = read_onnx_metadata(onnx_path)
    cfg = torch_parser.model.pretrained_cfg()
    assert md["model_name"] == "stanford-background"
    assert md["class_names"] == list(torch_parser.class_names)
    assert md["colors"] == torch_parser.palette.tolist()
    assert md["levels"] == cfg.levels == 3
    assert md["normalization"] == cfg.normalization
    assert md["pretrained_cfg"]["size_divisor"] == cfg.size_divisor
    assert md["meta"]["train_config"] == torch_parser.meta["train_config"]
    # the ONNX parser declares the same through the models/base.py interface
    assert onnx_parser.model.pretrained_cfg() == cfg
    assert onnx_parser.class_names == torch_parser.class_names and onnx_parser.name == "stanford-background"
    assert (onnx_parser.palette == torch_parser.palette).all()


@pytest.mark.slow
def test_feature_heldout_labels_equal(torch_parser, onnx_parser, heldout):
    from sceneparse.export import compare_parsers

    report = compare_parsers(torch_parser, onnx_parser, heldout)
    assert report["images"] == 12
    assert report["label_agreement"] >= 0.999, report
    assert report["max_prob_diff"] <= 1e-3, report


def test_feature_any_size_and_batch(torch_parser, onnx_parser, heldout):
    rgb = heldout[0]["image"]
    for h, w in [(241, 319), (37, 45), (17, 100)]:  # none a multiple of the stride
        crop = np.ascontiguousarray(rgb[:h, :w])
        same, diff = _agreement(torch_parser.parse(crop), onnx_parser.parse(crop))
        assert same >= 0.999 and diff <= 1e-3, (h, w, same, diff)
    # sides under 17 pixels: edge-padded by the wrapper (PyTorch replicates inside): still labelled
    tiny = onnx_parser.parse(np.ascontiguousarray(rgb[:12, :40]))
    assert tiny.labels.shape == (12, 40) and np.allclose(tiny.probs.sum(0), 1, atol=1e-4)
    # a batch of three frames through one graph call
    frames = [s["image"] for s in heldout[:3]]
    for a, b in zip(torch_parser.parse_stream(frames, temporal=False, batch_size=3),
                    onnx_parser.parse_stream(frames, temporal=False, batch_size=3)):  # fmt: skip
        assert _agreement(a, b)[0] >= 0.999


def test_feature_refiners_smoothers_and_sinks(torch_parser, onnx_parser, heldout, tmp_path):
    from sceneparse import run
    from sceneparse.sinks import build_sink

    rgb = heldout[1]["image"]
    a = torch_parser.parse(rgb, refine=("superpixels",))
    b = onnx_parser.parse(rgb, refine=("superpixels",))
    assert _agreement(a, b)[0] >= 0.999
    frames = [s["image"] for s in heldout[:3] if s["image"].shape == heldout[0]["image"].shape]
    # smoothed at the frame's size by both: the ONNX graph gives no logits before upsampling
    streams = (
        parser.parse_stream(frames, temporal="flow", smooth_at="frame") for parser in (torch_parser, onnx_parser)
    )
    for a, b in zip(*streams):
        assert _agreement(a, b)[0] >= 0.999
    stats = run(onnx_parser, frames, [build_sink("video", out=tmp_path)], progress=False)
    assert stats["written"] == len(frames) and stats["outputs"]["video"]["frames"] == len(frames)
    assert (tmp_path / "overlay.mp4").stat().st_size > 0


@pytest.mark.slow
def test_feature_other_input_size_camvid(camvid_path, tmp_path):
    from sceneparse.evaluate import heldout_dataset

    torch_parser = SceneParser.from_pretrained("camvid")
    path = tmp_path / "camvid.onnx"
    assert main(["export", "--model", "camvid", "--out", str(path)]) == 0
    onnx_parser = SceneParser.from_onnx(path, threads=2)
    ds = heldout_dataset(torch_parser)
    for i in (0, len(ds) - 1):
        rgb = ds[i]["image"]
        assert rgb.shape[:2] == (360, 480)
        same, diff = _agreement(torch_parser.parse(rgb), onnx_parser.parse(rgb))
        assert same >= 0.999 and diff <= 1e-3, (same, diff)


@pytest.mark.slow
def test_feature_rgbd_model_with_depth(sevenscenes_path, tmp_path):
    from sceneparse.sources import open_source

    torch_parser = SceneParser.from_pretrained("indoor-geometry-rgbd")
    path = tmp_path / "rgbd.onnx"
    from sceneparse.export import export_onnx

    export_onnx(torch_parser, path)
    onnx_parser = SceneParser.from_onnx(path, threads=2)
    assert onnx_parser.in_channels == 4 and read_onnx_metadata(path)["in_channels"] == 4
    src = open_source(sevenscenes_path)
    try:
        frames = list(itertools.islice(src, 2))
    finally:
        src.close()
    for frame in frames:
        a, b = (parser.parse(frame.image, frame.depth) for parser in (torch_parser, onnx_parser))
        same, diff = _agreement(a, b)
        assert same >= 0.999 and diff <= 1e-3, (same, diff)
    with pytest.raises(InputError, match="RGB-D model"):
        onnx_parser.parse(frames[0].image)


@pytest.mark.slow
def test_feature_int8_keeps_metadata_and_labels(onnx_path, torch_parser, heldout, tmp_path):
    path = quantize_onnx(onnx_path, tmp_path / "int8.onnx")
    assert read_onnx_metadata(path)["class_names"] == list(torch_parser.class_names)
    parser = SceneParser.from_onnx(path, threads=2)
    same = [(parser.parse(s["image"]).labels == torch_parser.parse(s["image"]).labels).mean() for s in heldout[:3]]
    assert min(same) >= 0.95, same


def test_exception_missing_and_foreign_files(tmp_path):
    with pytest.raises(NotFoundError, match="not found"):
        SceneParser.from_onnx(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(InputError, match="not a readable ONNX model|not exported by sceneparse"):
        SceneParser.from_onnx(junk)


def test_feature_commands_take_an_exported_graph(onnx_path, onnx_parser, real_images, tmp_path):
    """label runs an .onnx model like a shipped one; explain, which looks into the layers, says it cannot."""
    from PIL import Image

    from sceneparse.io import read_image

    out = tmp_path / "out"
    assert main(["label", str(real_images), "--model", str(onnx_path), "--out", str(out), "--no-progress"]) == 0
    first = sorted(out.rglob("*_labels.png"))[0]
    image = next(real_images.rglob(first.name.replace("_labels.png", ".jpg")))
    assert np.array_equal(np.asarray(Image.open(first)), onnx_parser.parse(read_image(image)).labels)
    assert main(["explain", str(image), "--model", str(onnx_path), "--out", str(tmp_path / "x")]) == 1


@pytest.mark.slow
def test_feature_cli_verify_of_an_rgbd_model_compares_with_depth(sevenscenes_path, tmp_path, capsys):
    out = tmp_path / "igr.onnx"
    assert main(["export", "--model", "indoor-geometry-rgbd", "--out", str(out), "--verify", "1",
                 "--data-root", str(sevenscenes_path), "--threads", "1"]) == 0  # fmt: skip
    report = json.loads(out.with_suffix(".verify.json").read_text())["fp32"]
    assert report["images"] == 1 and report["label_agreement"] >= 0.999 and report["max_prob_diff"] <= 1e-3
    assert "fp32 vs PyTorch on 1 held-out images" in capsys.readouterr().out


def test_exception_cli_refuses_bad_opsets_verify_counts_and_onnx_models(tmp_path, capsys, caplog):
    from sceneparse.errors import ConfigError
    from sceneparse.export import MIN_OPSET, check_opset, export_onnx, max_opset

    assert check_opset(OPSET) == OPSET and MIN_OPSET <= OPSET <= max_opset()
    out = str(tmp_path / "m.onnx")
    for flags, message in ((["--opset", "99"], f"opset 99 is not supported: give {MIN_OPSET} to {max_opset()}"),
                           (["--opset", "9"], "opset 9 is not supported"),
                           (["--verify", "-5"], "give 0 (none), N > 0 images or -1 (all), got -5")):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main(["export", "--out", out, *flags])
        err = capsys.readouterr().err
        assert done.value.code == 2 and message in err and len(err.splitlines()) <= 5  # usage, one line: no dump
    with pytest.raises(ConfigError, match="opset 9 is not supported"):  # the library checks before tracing
        export_onnx(SceneParser.from_pretrained("stanford-background"), out, 9)
    assert main(["export", "--model", str(tmp_path / "x.onnx"), "--out", out]) == 1
    assert "an ONNX graph cannot be exported again" in caplog.text
    assert not (tmp_path / "m.onnx").exists()


def test_exception_cli_out_with_a_file_in_the_way_fails_before_loading(tmp_path, caplog):
    (tmp_path / "afile").write_text("keep")
    assert main(["export", "--out", str(tmp_path / "afile" / "m.onnx")]) == 1
    assert "a file of that name is in the way" in caplog.text
    (tmp_path / "m.onnx").mkdir()  # the same message as the library's, not a ValueError of its own
    assert main(["export", "--out", str(tmp_path / "m.onnx")]) == 1
    assert "m.onnx: a folder of that name is in the way of the ONNX graph; give a file name (.onnx)" in caplog.text


def test_feature_cli_help_gives_the_rgbd_input_shape(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Bx3xHxW" in text and "Bx4xHxW for RGB-D models" in text


def test_feature_four_scale_rgbd_graph_runs_thin_frames(sevenscenes_path, tmp_path):
    """A 4-scale model (size divisor 32): a side of 17..32 pads to 32, whose coarsest scale (4
    pixels) is too small for the graph's reflections. The graph says 33 and the wrapper pads
    below that; ONNX Runtime failed on such frames (Pad reflect) although 17 was declared."""
    import onnx

    from sceneparse.export import export_onnx, graph_min_side
    from sceneparse.sources import open_source

    torch_parser = SceneParser.from_pretrained("indoor-geometry-rgbd")
    path = export_onnx(torch_parser, tmp_path / "igr.onnx")
    assert read_onnx_metadata(path)["min_side"] == 33 == graph_min_side(32, 4)
    src = open_source(sevenscenes_path)
    try:
        frame = next(iter(src))
    finally:
        src.close()
    onnx_parser = SceneParser.from_onnx(path, threads=1)
    for rows in (slice(200, 233), slice(200, 240)):  # 33 and 40 rows: the graph as it is
        rgb, depth = (np.ascontiguousarray(a[rows]) for a in (frame.image, frame.depth))
        same, diff = _agreement(torch_parser.parse(rgb, depth), onnx_parser.parse(rgb, depth))
        assert same >= 0.999 and diff <= 1e-3, (rows, same, diff)
    thin = [np.ascontiguousarray(a[200:220]) for a in (frame.image, frame.depth)]  # 20 rows: padded by the wrapper
    result = onnx_parser.parse(*thin)
    assert result.labels.shape == (20, 640) and np.allclose(result.probs.sum(0), 1, atol=1e-4)
    # a graph written before min_side was computed per model says 17: the wrapper still pads
    proto = onnx.load(str(path))
    next(p for p in proto.metadata_props if p.key == "min_side").value = "17"
    onnx.save(proto, str(tmp_path / "old.onnx"))
    assert SceneParser.from_onnx(tmp_path / "old.onnx", threads=1).parse(*thin).labels.shape == (20, 640)


def test_edge_export_leaves_the_parsers_model_as_it_was(torch_parser, tmp_path, monkeypatch):
    """export_onnx moved the parser's own model to the CPU (Module.to acts in place): a parser on
    a GPU then failed its next parse. Recorded here through the devices each module was sent to."""
    import torch

    from sceneparse.export import export_onnx

    moved = []
    original = torch.nn.Module.to

    def record(module, *args, **kwargs):
        moved.append(module)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", record)
    export_onnx(torch_parser, tmp_path / "m.onnx")
    assert moved and torch_parser.model not in moved and not torch_parser.model.training


def test_exception_library_export_to_places_that_cannot_be_written(torch_parser, tmp_path):
    """export_onnx traced the model, then failed with "[Errno 21] Is a directory:
    '/tmp/.m.onnx.tmp.onnx' -> '/tmp/m.onnx'" or "[Errno 17] File exists"; now one OutputError
    naming the file, before the tracing for the first two."""
    from sceneparse.errors import OutputError
    from sceneparse.export import export_onnx, quantize_onnx

    (tmp_path / "m.onnx").mkdir()
    (tmp_path / "afile").write_text("keep")
    for dst, message in ((tmp_path / "m.onnx", "m.onnx: a folder of that name is in the way"),
                         (tmp_path / "afile" / "m.onnx", "cannot write .*afile/m.onnx")):  # fmt: skip
        with pytest.raises(OutputError, match=message):
            export_onnx(torch_parser, dst)
        with pytest.raises(OutputError, match=message):
            quantize_onnx(tmp_path / "never-read.onnx", dst)
    assert (tmp_path / "afile").read_text() == "keep"
