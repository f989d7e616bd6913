"""The first hour: the setup script, the demos run with the wrong Python, ``sceneparse --version``
and tests that need a dataset which is not there (tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("demo", ["label_video.py", "label_samples.py"])
def test_exception_demo_without_sceneparse_says_what_to_run(demo):
    # -S -I: a Python that sees no site-packages, hence neither sceneparse nor its dependencies
    proc = subprocess.run([sys.executable, "-S", "-I", str(ROOT / "demos" / demo), "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot import" in proc.stderr and f".venv/bin/python demos/{demo}" in proc.stderr


def test_smoke_version():
    from sceneparse import __version__
    from sceneparse.cli import main

    proc = subprocess.run([sys.executable, "-m", "sceneparse", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"sceneparse {__version__}"
    assert main(["--help"]) == 0


def test_feature_missing_dataset_skips_with_how_to_get_it(monkeypatch, tmp_path):
    from conftest import require_data

    monkeypatch.delenv("SCENEPARSE_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="`sceneparse data download camvid`.*SCENEPARSE_DATA"):
        require_data("camvid", tmp_path / "camvid" / "CamVid")
    monkeypatch.setenv("SCENEPARSE_REQUIRE_DATA", "1")  # CI: nothing is skipped
    with pytest.raises(pytest.fail.Exception, match="SCENEPARSE_REQUIRE_DATA"):
        require_data("camvid", tmp_path / "camvid" / "CamVid")
    assert require_data("camvid", tmp_path) == tmp_path


def test_feature_ci_requires_the_data():
    assert "SCENEPARSE_REQUIRE_DATA=1" in (ROOT / ".ci" / "run").read_text()


FAKE_PYTHON = """#!/bin/bash
# Stands in for .venv/bin/python: logs pip calls; no torch installed, no local torch wheel.
case "$*" in
  *"-m pip install"*"--no-index"*) echo "local $*" >>"$LOG"; exit 1 ;;
  *"-m pip install"*"download.pytorch.org"*) echo "cpu-index $*" >>"$LOG"; exit 0 ;;
  *"-m pip install -e"*) echo "editable $*" >>"$LOG"; exit 0 ;;
  *"-m pip install"*) echo "pypi $*" >>"$LOG"; exit 0 ;;
  *"importlib.metadata"*) exit 1 ;;
esac
exit 0
"""


@pytest.mark.parametrize("gpu", [False, True])
def test_feature_setup_takes_torch_from_local_wheels_then_cpu_index(tmp_path, gpu):
    for name in ("scripts/setup_env.sh", "setup.py", "pyproject.toml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for path, text in ((tmp_path / ".venv" / "bin" / "python", FAKE_PYTHON), (bin_ / "nvidia-smi", "#!/bin/bash\n")):
        if path.name != "nvidia-smi" or gpu:
            path.write_text(text)
            path.chmod(0o755)
    env = {**os.environ, "LOG": str(tmp_path / "log"), "PATH": f"{bin_}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(tmp_path / "scripts" / "setup_env.sh"), "dev"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    calls = [line.split()[0] for line in (tmp_path / "log").read_text().splitlines()]
    assert calls == ["local", "pypi" if gpu else "cpu-index", "editable"]
    said = "NVIDIA GPU found: the CUDA build from PyPI" if gpu else "the CPU build from https://download.pytorch.org"
    assert said in proc.stdout


def test_exception_setup_on_an_old_python_says_which_python_it_needs(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup_env.sh").write_text((ROOT / "scripts" / "setup_env.sh").read_text())
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/bash\n[ "$1" = --version ] && { echo "Python 3.9.18"; exit 0; }\nexit 1\n')  # too old
    old.chmod(0o755)
    for python, found in ((old, "Python 3.9.18"), (tmp_path / "none", "not found")):
        proc = subprocess.run(["bash", str(tmp_path / "scripts" / "setup_env.sh"), "dev"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHON": str(python)})  # fmt: skip
        assert proc.returncode == 1 and f"needs Python 3.10 or newer (torch 2.13.0); {python}: {found}" in proc.stderr
        assert not (tmp_path / ".venv").exists()
