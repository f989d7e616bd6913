import math

import pytest
import torch
from training import msconvnet_checkpoint

from sceneparse.engine import build_scheduler, load_checkpoint, load_scheduler_state, replay_scheduler
from sceneparse.errors import ConfigError, InputError, NotFoundError

BASE_LR = 0.003


def _formula(name: str, total: int, warmup: int):
    """The schedule as the package first wrote it (a LambdaLR of this factor)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if name == "poly":
            return (1 - t) ** 0.9
        return 1.0

    return factor


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=BASE_LR, momentum=0.9)


def _run(optimizer, scheduler, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("name", ["cosine", "poly", "constant"])
@pytest.mark.parametrize("total, warmup", [(300, 0), (300, 1), (300, 2), (300, 25), (7, 7), (1, 0)])
def test_feature_scheduler_matches_formula(name, total, warmup):
    opt = _optimizer()
    sched = build_scheduler(opt, name, total, warmup)
    factor = _formula(name, total, warmup)
    # Every step of the run and the rate after its last step.
    got = _run(opt, sched, total + 1)
    want = [BASE_LR * factor(step) for step in range(total + 1)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("name", ["cosine", "poly"])
def test_feature_scheduler_resumes_from_state_dict(name):
    opt = _optimizer()
    sched = build_scheduler(opt, name, 120, 10)
    _run(opt, sched, 37)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    rest = _run(opt, sched, 83)

    opt2 = _optimizer()
    sched2 = build_scheduler(opt2, name, 120, 10)
    opt2.load_state_dict(state["optimizer"])
    load_scheduler_state(sched2, state["scheduler"])
    assert _run(opt2, sched2, 83) == pytest.approx(rest, rel=1e-12, abs=1e-15)


def test_feature_scheduler_resumes_from_lambdalr_state():
    # last.pt of runs started before the schedule used torch's schedulers hold a LambdaLR state.
    factor = _formula("cosine", 120, 10)
    opt = _optimizer()
    old = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    _run(opt, old, 37)
    state = {"optimizer": opt.state_dict(), "scheduler": old.state_dict()}

    opt2 = _optimizer()
    sched = build_scheduler(opt2, "cosine", 120, 10)
    opt2.load_state_dict(state["optimizer"])
    load_scheduler_state(sched, state["scheduler"])
    got = _run(opt2, sched, 83)
    assert got == pytest.approx([BASE_LR * factor(s) for s in range(37, 120)], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("name", ["cosine", "poly"])
def test_feature_scheduler_replayed_over_extended_run(name):
    # A run of 120 steps stopped at 37 and extended to 200: the rates go on as a 200-step plan's.
    opt = _optimizer()
    sched = build_scheduler(opt, name, 120, 10)
    _run(opt, sched, 37)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}

    opt2 = _optimizer()
    longer = build_scheduler(opt2, name, 200, 10)
    opt2.load_state_dict(state["optimizer"])
    replay_scheduler(longer, state["scheduler"]["last_epoch"])
    factor = _formula(name, 200, 10)
    assert _run(opt2, longer, 163) == pytest.approx([BASE_LR * factor(s) for s in range(37, 200)], rel=1e-9, abs=1e-15)


def test_exception_scheduler_bad_options():
    with pytest.raises(ConfigError, match="'cosine', 'poly', 'constant'"):
        build_scheduler(_optimizer(), "step", 10)
    with pytest.raises(ConfigError, match="total_steps"):
        build_scheduler(_optimizer(), "cosine", 0)


def test_exception_load_checkpoint(tmp_path):
    with pytest.raises(NotFoundError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a sceneparse checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    # the marker but a part missing (a hand-edited or half-converted file): KeyError 'meta' before
    ckpt = load_checkpoint(msconvnet_checkpoint(tmp_path / "m.pt", 3, 0, width=16, hidden=16))
    del ckpt["meta"]["class_names"]
    ckpt["model_args"] = [3]
    torch.save(ckpt, tmp_path / "damaged.pt")
    with pytest.raises(InputError, match=r"damaged sceneparse checkpoint: model_args, meta\['class_names'\] missing"):
        load_checkpoint(tmp_path / "damaged.pt")


def test_exception_weights_that_do_not_fit_and_unknown_devices(tmp_path):
    from sceneparse.engine import model_from_checkpoint, resolve_device

    msconvnet_checkpoint(tmp_path / "m.pt", 3, 0, width=16, hidden=16)
    ckpt = load_checkpoint(tmp_path / "m.pt")
    ckpt["state_dict"].pop(next(iter(ckpt["state_dict"])))
    with pytest.raises(InputError, match="its weights do not fit the model .*Missing key"):
        model_from_checkpoint(ckpt)
    with pytest.raises(ConfigError, match="unknown device 'gpu': give cpu, cuda"):
        resolve_device("gpu")


def _soup_source(path, seed: int, num_classes: int = 3, width: int = 16):
    return msconvnet_checkpoint(path, num_classes, seed, metrics={"pixel_accuracy": 0.5}, width=width, hidden=16)


def test_average_checkpoints_is_the_weighted_mean(tmp_path):
    from sceneparse.engine import average_checkpoints
    from sceneparse.pipeline import SceneParser

    a, b = _soup_source(tmp_path / "a.pt", 1), _soup_source(tmp_path / "b.pt", 2)
    out = average_checkpoints([a, b], tmp_path / "soup.pt", weights=[3, 1])
    soup, sa, sb = (load_checkpoint(p) for p in (out, a, b))
    for k, v in soup["state_dict"].items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.75 * sa["state_dict"][k] + 0.25 * sb["state_dict"][k]), k
        else:
            assert torch.equal(v, sa["state_dict"][k]), k
    assert [s["weight"] for s in soup["meta"]["averaged_from"]] == [0.75, 0.25]
    assert "metrics" not in soup["meta"]  # the sources' scores are not the mean's
    rgb = torch.randint(0, 255, (40, 56, 3), dtype=torch.uint8).numpy()
    assert SceneParser.from_checkpoint(out).parse(rgb).labels.shape == (40, 56)  # it loads and labels


def test_average_checkpoints_refuses_other_models(tmp_path):
    from sceneparse.engine import average_checkpoints

    a = _soup_source(tmp_path / "a.pt", 1)
    with pytest.raises(InputError, match="not the same model"):
        average_checkpoints([a, _soup_source(tmp_path / "w.pt", 2, width=8)], tmp_path / "x.pt")
    with pytest.raises(InputError, match="not the same model"):
        average_checkpoints([a, _soup_source(tmp_path / "c.pt", 2, num_classes=4)], tmp_path / "x.pt")
    with pytest.raises(InputError, match="at least two"):
        average_checkpoints([a], tmp_path / "x.pt")
    with pytest.raises(InputError, match="one non-negative weight per checkpoint"):
        average_checkpoints([a, a], tmp_path / "x.pt", weights=[1])
    assert not (tmp_path / "x.pt").exists()


def test_exception_devices_this_machine_lacks_are_named_up_front(monkeypatch):
    """ "meta", "xla", a GPU index past the last, MPS off Apple silicon: refused with the names that
    work, not later by torch ("Cannot copy out of meta tensor", "not linked with support for xla")."""
    from sceneparse.engine import resolve_device

    for name in ("meta", "xla", "hip", "cpu:3", " cpu", "CPU", 0):
        with pytest.raises(ConfigError, match="give cpu, cuda, cuda:N, mps or auto"):
            resolve_device(name)
    assert resolve_device("cpu") == resolve_device(torch.device("cpu", 0)) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="sees no CUDA GPU here"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="sees 2 CUDA GPU\\(s\\): cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no MPS"):
        resolve_device("mps")


def test_feature_seeding_repeats_and_refuses_seeds_numpy_cannot_take():
    import random

    import numpy as np

    from sceneparse.engine import MAX_SEED, seed_everything

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(MAX_SEED)
    first = draws()
    seed_everything(MAX_SEED)
    assert draws() == first
    seed_everything(7)
    assert draws() != first
    for bad in (-1, MAX_SEED + 1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="seed must be an integer from 0 to 4294967295"):
            seed_everything(bad)


def test_edge_code_revision_of_a_package_inside_another_projects_tree(tmp_path, monkeypatch):
    """sceneparse installed in a virtual environment inside a user's git project: the project's
    revision (and its '-dirty') went into every checkpoint as sceneparse's code revision."""
    import subprocess

    from sceneparse import engine

    project = tmp_path / "project"
    package = project / ".venv" / "lib" / "site-packages" / "sceneparse"
    package.mkdir(parents=True)
    (package / "engine.py").write_text("# installed copy\n")
    (project / "notes.txt").write_text("the user's own work\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
    for args in (["init", "-q"], ["add", "notes.txt"], ["commit", "-q", "-m", "user"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(engine, "__file__", str(package / "engine.py"))
    assert engine.code_revision() == "unknown"
    subprocess.run([*git, "add", "-f", ".venv"], check=True, capture_output=True)  # a checkout that tracks it
    subprocess.run([*git, "commit", "-q", "-m", "vendored"], check=True, capture_output=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert engine.code_revision() == head


def test_exception_checkpoint_destinations_that_cannot_be_written(tmp_path):
    """A folder as the destination gave "[Errno 21] Is a directory: '/.tmp.tmp' -> '/tmp'"; a place
    that cannot be created gave torch's "[enforce fail at inline_container.cc:747]"."""
    from sceneparse.engine import export_checkpoint
    from sceneparse.errors import OutputError

    src = msconvnet_checkpoint(tmp_path / "m.pt", 3, 0, width=16, hidden=16)
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(OutputError, match="folder.pt: a folder of that name is in the way"):
        export_checkpoint(src, tmp_path / "folder.pt")
    (tmp_path / "afile").write_text("keep")
    with pytest.raises(OutputError, match="cannot write the checkpoint .*afile/sub/m.pt"):
        export_checkpoint(src, tmp_path / "afile" / "sub" / "m.pt")
    assert (tmp_path / "afile").read_text() == "keep"
    assert load_checkpoint(export_checkpoint(src, tmp_path / "new" / "m.pt"))["meta"]["stored_as"] == "float16"


def test_feature_rss_mb_of_this_and_another_process():
    import subprocess
    import sys

    import numpy as np

    from sceneparse.engine import rss_mb

    assert rss_mb() > 50  # this process: Python with torch and numpy
    # two interpreters, one holding 64 MB more (written, so resident); compared with each other,
    # not with this process, whose allocator may reuse memory it already holds
    code = "import sys, time; b = b'x' * (int(sys.argv[1]) << 20); print('ready', flush=True); time.sleep(30)"
    children = [subprocess.Popen([sys.executable, "-c", code, mb], stdout=subprocess.PIPE, text=True)
                for mb in ("0", "64")]  # fmt: skip
    try:
        assert [child.stdout.readline().strip() for child in children] == ["ready", "ready"]
        small, large = (rss_mb(child.pid) for child in children)
        assert 1 < small < rss_mb() and 50 < large - small < 80
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert np.isnan(rss_mb(children[0].pid))  # gone
