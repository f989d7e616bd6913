"""Labelling on Ray (sceneparse/distributed/ray_label.py, ``sceneparse label --ray``): one local
Ray instance for the module (2 CPUs, no dashboard), real Stanford Background photographs and a
video made of one, against the local command."""

import json
import os
import shutil
import sys

import cv2
import numpy as np
import pytest
from optional import require

from sceneparse import SceneParser
from sceneparse.cli import main
from sceneparse.errors import ConfigError
from sceneparse.labelling import label


@pytest.fixture(scope="module")
def ray_cluster():
    ray = require("ray", "pip install 'sceneparse[ray]'")
    require("ray.data", "pip install 'sceneparse[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def collection(real_images, tmp_path_factory):
    """Three real photographs (one in a sub-folder), a corrupt JPEG, a 6-frame video panning over
    a real photograph, and a corrupt video."""
    root = tmp_path_factory.mktemp("collection")
    photos = root / "photos"
    shutil.copytree(real_images, photos)
    (photos / "broken.jpg").write_bytes(b"not a JPEG")
    img = cv2.imread(str(next(real_images.glob("*.jpg"))))
    h, w = img.shape[:2]
    writer = cv2.VideoWriter(str(root / "pan.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w - 40, h))
    for i in range(6):
        writer.write(np.ascontiguousarray(img[:, 4 * i : 4 * i + w - 40]))
    writer.release()
    (root / "bad.mp4").write_bytes(b"\x00" * 2048)
    return [str(photos), str(root / "pan.mp4"), str(root / "bad.mp4")]


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _mtimes(folder):
    return {p: os.stat(folder / p).st_mtime_ns for p in _files(folder)}


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.slow
def test_feature_ray_writes_the_local_commands_files_reports_corrupt_inputs_and_reruns_without_work(
    ray_cluster, collection, tmp_path, capsys
):
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    argv = ["label", *collection, "--out", str(on_ray), "--ray", "local", "--workers", "2", "--threads", "1",
            "--ray-batch", "2", "--labels", "--no-progress"]  # fmt: skip
    assert main(argv) == 1  # two inputs could not be read
    assert f"; 2 failed (each with its reason in {on_ray / 'label_report.json'})" in capsys.readouterr().out

    parser = SceneParser.from_pretrained("stanford-background")
    label(parser, collection, local, labels=True, progress=False)
    # The same files (the report aside) under the same names, the same labels.
    names = _files(on_ray)
    assert "label_report.json" in names and ".sceneparse-ray" not in {n.split("/")[0] for n in names}
    names.remove("label_report.json")
    assert names == _files(local)
    assert "pan/overlay.mp4" in names and any(n.startswith("sub/") and n.endswith("_labels.png") for n in names)
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 3 + 6  # three photographs, six frames of the video
    for n in pngs:
        a, b = cv2.imread(str(on_ray / n), cv2.IMREAD_UNCHANGED), cv2.imread(str(local / n), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and (a == b).mean() > 0.999, n
    assert _frames(on_ray / "pan" / "overlay.mp4") == _frames(local / "pan" / "overlay.mp4") == 6

    # The corrupt inputs: reported with the reason, skipped; the rest labelled.
    report = json.loads((on_ray / "label_report.json").read_text())
    assert report["labelled"] == 4 and report["skipped"] == 0 and report["images"] == 3
    assert sorted(os.path.basename(k) for k in report["failed"]) == ["bad.mp4", "broken.jpg"]
    assert "not a readable image" in next(v for k, v in report["failed"].items() if k.endswith("broken.jpg"))
    assert report["streams"][collection[1]]["frames"] == 6

    # A re-run does nothing twice: what is done is skipped, untouched; only the failed are tried again.
    from sceneparse.distributed.ray_label import label_on_ray

    before = _mtimes(on_ray)
    again = label_on_ray("stanford-background", collection, on_ray, workers=2, threads=1, labels=True,
                         progress=False)  # fmt: skip
    assert again["labelled"] == 0 and again["skipped"] == 4 and len(again["failed"]) == 2
    after = _mtimes(on_ray)
    assert {k: v for k, v in after.items() if k != "label_report.json"} == {
        k: v for k, v in before.items() if k != "label_report.json"
    }

    # A worker killed while labelling the video left its staging folder and no overlay.mp4 (it
    # is moved into place last): the next run labels that video again, and only it.
    (on_ray / "pan" / "overlay.mp4").unlink()
    staging = on_ray / ".sceneparse-ray" / "pan-killed"
    staging.mkdir(parents=True)
    (staging / "overlay.mp4").write_bytes(b"half a video")
    broken = os.path.join(collection[0], "broken.jpg")  # still corrupt: tried again, reported again
    third = label_on_ray("stanford-background", collection[:2], on_ray, workers=1, threads=1, labels=True,
                         progress=False)  # fmt: skip
    assert third["labelled"] == 1 and third["skipped"] == 3 and [*third["failed"]] == [broken]
    assert _frames(on_ray / "pan" / "overlay.mp4") == 6 and not (on_ray / ".sceneparse-ray").exists()


def test_exception_without_ray_the_error_names_the_extra(monkeypatch, tmp_path):
    from sceneparse.distributed import ray_label

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'sceneparse\[ray\]'"):
        ray_label.label_on_ray("stanford-background", [str(tmp_path)], tmp_path / "out")


def test_exception_cameras_stay_local(tmp_path):
    require("ray", "pip install 'sceneparse[ray]'")
    from sceneparse.distributed.ray_label import label_on_ray

    with pytest.raises(ConfigError, match="cameras and stream URLs are labelled on this machine"):
        label_on_ray("stanford-background", ["0"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_exception_depth_maps_inside_a_folder_given_are_not_planned_as_photos(nyu_frames, tmp_path):
    """``--ray`` lists the images itself: with ``--depth frames/depth`` (NYU's rgb/ and depth/
    side by side) the depth maps were planned as photos too, as the local command did before."""
    from sceneparse.distributed.ray_label import _plan

    for sub in ("rgb", "depth"):
        (tmp_path / "frames" / sub).mkdir(parents=True)
        for p in sorted((nyu_frames / sub).glob("*.png"))[:2]:
            (tmp_path / "frames" / sub / p.name).write_bytes(p.read_bytes())
    plan = _plan([tmp_path / "frames"], tmp_path / "out", False, False, False, depth=tmp_path / "frames" / "depth")
    assert [i["name"] for i in plan["images"]] == ["rgb/0001", "rgb/0002"]
    assert len(_plan([tmp_path / "frames"], tmp_path / "out", False, False, False)["images"]) == 4  # no depth: all


@pytest.mark.slow
def test_exception_a_video_whose_worker_dies_for_good_is_reported_and_the_rest_labelled(
    ray_cluster, collection, tmp_path, monkeypatch
):
    from sceneparse.distributed import ray_label

    class DyingWorker(ray_label.LabelWorker):  # defined here: Ray ships it to the workers by value
        def label_video(self, spec, folder):
            if "dies" in os.path.basename(spec):
                os._exit(1)  # as the kernel's OOM killer would end it
            return super().label_video(spec, folder)

    monkeypatch.setattr(ray_label, "LabelWorker", DyingWorker)
    dies = tmp_path / "dies.mp4"
    shutil.copy(collection[1], dies)
    out = tmp_path / "out"
    # one worker: the video that kills it comes first, so a fresh actor must label the next
    report = ray_label.label_on_ray("stanford-background", [str(dies), collection[1]], out, workers=1, threads=1,
                                    retries=0, progress=False)  # fmt: skip
    assert report["labelled"] == 1 and [*report["failed"]] == [str(dies)]
    assert "its worker died 1 time(s) while labelling it" in report["failed"][str(dies)]
    assert _frames(out / "pan" / "overlay.mp4") == 6 and not (out / "dies").exists()
    assert not (out / ".sceneparse-ray").exists()  # the dead worker's staging folder removed
    assert json.loads((out / "label_report.json").read_text())["failed"] == report["failed"]


def test_exception_an_unknown_model_fails_before_ray_starts(tmp_path, monkeypatch):
    ray = require("ray", "pip install 'sceneparse[ray]'")
    require("ray.data", "pip install 'sceneparse[ray]'")
    from sceneparse.distributed import ray_label

    def no_start(*a, **k):
        raise AssertionError("Ray started")

    monkeypatch.setattr(ray, "init", no_start)
    photo = tmp_path / "in" / "a.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ConfigError, match="unknown pretrained model 'nosuch'"):
        ray_label.label_on_ray("nosuch", [str(photo.parent)], tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ray_label.label_on_ray(str(tmp_path / "missing.pt"), [str(photo.parent)], tmp_path / "out", progress=False)


def test_exception_ctrl_c_leaves_the_report_of_the_interrupted_run(tmp_path, monkeypatch):
    require("ray", "pip install 'sceneparse[ray]'")
    require("ray.data", "pip install 'sceneparse[ray]'")
    from sceneparse.distributed import ray_label

    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(photos / name), np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / ray_label.REPORT_NAME).write_text('{"labelled": 0, "failed": {"old.jpg": "of the run before"}}')

    def one_then_ctrl_c(ray, images, ctor, resources, workers, batch_size, report, bar):
        report["labelled"] += 1
        report["images"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_label, "_start", lambda *a, **k: (False, 1))  # no Ray needed to see the report
    monkeypatch.setattr(ray_label, "_run_images", one_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        ray_label.label_on_ray("stanford-background", [str(photos)], out, progress=False)
    report = json.loads((out / ray_label.REPORT_NAME).read_text())
    assert report["interrupted"] is True and report["labelled"] == 1 and report["failed"] == {}
