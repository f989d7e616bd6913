"""The tools/ scripts: bad or missing arguments give one clear line, never a traceback
(sceneparse/cli/script.py runs each as the ``sceneparse`` command runs its commands)."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sceneparse.cli.script import run_script
from sceneparse.errors import ConfigError

ROOT = Path(__file__).parents[2]
TOOLS = sorted((ROOT / "tools").glob("*.py"))


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name: str, args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """``python tools/NAME.py ARGS`` in this process: the exit code and stderr."""
    monkeypatch.setattr(sys, "argv", [f"tools/{name}.py", *args])
    try:
        code = run_script(_tool(name).main)
    except SystemExit as done:  # argparse's own message (exit code 2)
        code = done.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_feature_every_tool_runs_through_run_script_or_the_command_line(path):
    text = path.read_text()
    entry = text[text.index('if __name__ == "__main__":') :]
    assert "run_script(main)" in entry or re.search(r"main\(\[\"(label|train|evaluate)\"", entry), path.name


def test_exception_an_unknown_model_is_one_line_without_a_traceback():
    # the real entry point, as a user runs it
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "ablation.py"), "--model", "nosuch"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "ablation.py: error: unknown pretrained model 'nosuch'; shipped models: camvid, indoor-geometry, "
        "indoor-geometry-rgbd, siftflow, stanford-background, stanford-background-paper (or give a .pt path; "
        "the commands also take an exported .onnx)"
    )


@pytest.mark.parametrize(
    ("name", "args", "code", "message"),
    [
        ("adjust_prior", ["--model", "stanford-background", "--gammas", "1:2"], 2, "expected START:STOP:STEP"),
        ("adjust_prior", ["--model", "stanford-background", "--gammas", "1:0:0.1"], 2, "START <= STOP"),
        ("stream_memory", ["--size", "240"], 2, "expected WxH, e.g. 240x180, got '240'"),
        ("tune_refiners", ["--model", "stanford-background", "--refine", "crf", "--grid", "{bad"], 2, "not valid JSON"),
        ("tune_refiners", ["--model", "stanford-background", "--refine", "crf", "--grid", "[1]"], 2, "JSON object"),
        ("scaling_figures", ["ddp", "--nproc", "0"], 2, "--nproc: expected an integer >= 1, got 0"),
        ("scaling_figures", ["ray", "--images", "0"], 2, "--images: expected an integer >= 1, got 0"),
        ("export_weights", ["/nonexistent.pt", "out.pt"], 1, "checkpoint not found: /nonexistent.pt"),
        ("evaluate_flip", ["/nonexistent.pt"], 1, "checkpoint not found: /nonexistent.pt"),
        ("choose_tta", ["--model", "stanford-background", "--candidates", "bogus"], 1, "'bogus' is neither 'flip'"),
        ("ablation", ["--model", "stanford-background", "--combinations", "bogus"], 2, "not valid JSON"),
        ("choose_tta", ["--model", "stanford-background", "--criterion", "targets"], 2, "needs --targets PIXEL CLASS"),
        (
            "adjust_prior",
            ["--model", "stanford-background", "--criterion", "targets", "--targets", "80", "0"],
            2,
            "needs --targets PIXEL CLASS",
        ),
        ("ablation", ["--model", "stanford-background", "--combinations", '{"a": 1}'], 2, "expected a JSON list"),
        ("train_view_consistency", ["--scales", "x", "--out", "v.pt"], 2, "comma-separated floats above 0"),
        ("train_view_consistency", ["--steps", "0", "--out", "v.pt"], 2, "--steps: expected an integer >= 1"),
        ("learn_crf", ["--model", "stanford-background", "--factor", "0", "--out", "c.json"], 2, "integer >= 1"),
        ("stream_memory", ["--frames", "0"], 2, "--frames: expected an integer >= 1, got 0"),
        ("semantic_map_figures", ["--windows", "x"], 2, "--windows: expected comma-separated ints above 0"),
        ("estimate_registration", ["--every", "0"], 2, "--every: expected an integer >= 1, got 0"),
    ],
)
def test_exception_bad_arguments_name_the_problem(name, args, code, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    got, err = _run(name, args, monkeypatch, capsys)
    assert got == code and message in err and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("what", ["ddp", "ray"])
def test_exception_scaling_figures_refuses_an_out_with_earlier_runs(what, monkeypatch, capsys, tmp_path):
    (tmp_path / what / "plain").mkdir(parents=True)
    code, err = _run("scaling_figures", [what, "--out", str(tmp_path)], monkeypatch, capsys)
    assert code == 1 and f"--out: {tmp_path / what} holds the runs of an earlier `{what}`; give another --out" in err
    assert [p.name for p in tmp_path.rglob("*")] == [what, "plain"]  # nothing run, nothing written


def test_exception_average_weights_of_one_checkpoint(monkeypatch, capsys, tmp_path):
    code, err = _run("average_weights", [str(tmp_path / "a.pt"), "--out", str(tmp_path / "soup.pt")], monkeypatch,
                     capsys)  # fmt: skip
    assert code == 1 and "averaging takes at least two checkpoints, got 1" in err


def test_exception_load_test_says_why_the_service_did_not_start(monkeypatch, capsys, stanford_path):
    code, err = _run("load_test", ["--model", "nosuch", "--requests", "1", "--max-batch", "1"], monkeypatch, capsys)
    assert code == 1 and "the service did not start" in err and "unknown pretrained model 'nosuch'" in err, err


def test_exception_ablation_checks_the_refiners_before_parsing_the_images(monkeypatch, capsys):
    import sceneparse.evaluate

    def no_parsing(*a, **k):
        raise AssertionError("the convnet ran over the images before the refiners were checked")

    monkeypatch.setattr(sceneparse.evaluate, "cached_predictions", no_parsing)
    monkeypatch.setattr(sceneparse.evaluate, "heldout_dataset", lambda *a, **k: [])
    code, err = _run("ablation", ["--model", "stanford-background", "--combinations", '[["crf"], ["nosuch"]]'],
                     monkeypatch, capsys)  # fmt: skip
    assert code == 1 and "unknown refiner 'nosuch'" in err, err
    code, err = _run("ablation", ["--model", "stanford-background", "--combinations", '["crf"]'], monkeypatch, capsys)
    assert code == 1 and "expected a JSON list of refiner lists, got 'crf'" in err, err


def test_exception_semantic_map_figures_needs_enough_frames(monkeypatch, capsys):
    from conftest import require_data, shared_data

    root = require_data("rgbd-sequence-7scenes", shared_data() / "rgbd-sequence-7scenes")
    code, err = _run("semantic_map_figures", ["--sequence", str(root), "--frames", "0:2"], monkeypatch, capsys)
    assert code == 1 and "--frames: 2 frame(s) chosen" in err and "at least 4" in err, err


def test_exception_tune_refiners_checks_the_refiner_before_parsing_the_images(monkeypatch, capsys):
    import sceneparse.evaluate

    def no_parsing(*a, **k):
        raise AssertionError("the convnet ran over the images before the refiner was checked")

    monkeypatch.setattr(sceneparse.evaluate, "cached_predictions", no_parsing)
    monkeypatch.setattr(sceneparse.evaluate, "heldout_dataset", no_parsing)
    code, err = _run("tune_refiners", ["--model", "stanford-background", "--refine", "nosuch"], monkeypatch, capsys)
    assert code == 1 and "unknown refiner 'nosuch'; available: crf, offsets, superpixels, tree" in err
    code, err = _run("tune_refiners", ["--model", "stanford-background", "--refine", "crf", "--grid",
                                       '{"no_such_parameter": [1, 2]}'], monkeypatch, capsys)  # fmt: skip
    assert code == 1 and "no_such_parameter" in err and "Traceback" not in err, err


def test_exception_geometry_labels_frames_outside_the_sequence(monkeypatch, capsys, tmp_path):
    from conftest import require_data, shared_data

    root = require_data("rgbd-sequence-7scenes", shared_data() / "rgbd-sequence-7scenes")
    out = tmp_path / "images"
    code, err = _run("geometry_labels", ["--root", str(root), "--frames", "0", "99999", "--out", str(out)],
                     monkeypatch, capsys)  # fmt: skip
    assert code == 1 and "--frames: 99999 not among the frames of the sequence (0..199, 200 frames)" in err, err
    assert not out.exists()  # checked before anything was drawn


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("semantic_map_figures", ["--frames", "300:100"], "--frames 300:100 selects none of the sequence's"),
        ("estimate_registration", ["--frames", "150:100"], "--frames 150:100 selects none of the sequence's"),
    ],
)
def test_exception_an_empty_frame_range(name, args, message, monkeypatch, capsys):
    from conftest import require_data, shared_data

    root = require_data("rgbd-sequence-7scenes", shared_data() / "rgbd-sequence-7scenes")
    code, err = _run(name, [*args, "--sequence", str(root)], monkeypatch, capsys)
    assert code == 1 and message in err and "Traceback" not in err, err


def test_smoke_run_script_passes_on_codes_and_keeps_other_errors():
    assert run_script(lambda: 3) == 3
    assert run_script(lambda: {"figures": 1}) == 0
    assert run_script(lambda argv: len(argv), ["a", "b"]) == 2

    def bug():
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        run_script(bug)


def test_exception_run_script_one_line_for_our_errors_and_130_for_ctrl_c(capsys):
    def bad():
        raise ConfigError("option x: out of range")

    def interrupted():
        raise KeyboardInterrupt

    assert run_script(bad) == 1
    assert capsys.readouterr().err.endswith("error: option x: out of range\n")
    assert run_script(interrupted) == 130
    assert capsys.readouterr().err.endswith("interrupted\n")
