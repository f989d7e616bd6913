import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

# tests/synthetic.py (small synthetic scenes) importable from every test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data() -> Path:
    return Path(os.environ.get("SCENEPARSE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def stanford_archive() -> Path:
    return shared_data() / "stanford-background" / "iccv09Data.tar.gz"


def _require(path: Path) -> Path:
    if not path.exists():
        # Not a skip: the real data is part of the test set-up (../shared/data or $SCENEPARSE_DATA).
        raise FileNotFoundError(f"test data not found at {path}; set SCENEPARSE_DATA")
    return path


@pytest.fixture(scope="session")
def siftflow_path() -> Path:
    return _require(shared_data() / "siftflow" / "SiftFlowDataset.zip")


@pytest.fixture(scope="session")
def camvid_path() -> Path:
    return _require(shared_data() / "camvid" / "CamVid")


@pytest.fixture(scope="session")
def nyu_frames() -> Path:
    return _require(shared_data() / "nyuv2" / "frames")


@pytest.fixture(scope="session")
def sevenscenes_path() -> Path:
    return _require(shared_data() / "rgbd-sequence-7scenes")


@pytest.fixture(scope="session")
def nyu_meta() -> Path:
    return _require(shared_data() / "nyuv2" / "meta")


@pytest.fixture(scope="session")
def stanford_path() -> Path:
    path = stanford_archive()
    if not path.is_file():
        # Not a skip: the real data is part of the test set-up (../shared/data or $SCENEPARSE_DATA).
        raise FileNotFoundError(f"Stanford Background archive not found at {path}; set SCENEPARSE_DATA")
    return path


@pytest.fixture(scope="session")
def stanford_val(stanford_path):
    from sceneparse.data import StanfordBackground

    return StanfordBackground(stanford_path, split="val", fold=0)


@pytest.fixture(scope="module")
def real_images(stanford_path, tmp_path_factory):
    """Three real Stanford Background photographs as JPEG files, one in a sub-folder."""
    out = tmp_path_factory.mktemp("images")
    (out / "sub").mkdir()
    import tarfile

    with tarfile.open(stanford_path) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)[:3]
        for k, m in enumerate(members):
            dest = out / ("sub" if k == 2 else "") / m.name.rsplit("/", 1)[-1]
            dest.write_bytes(tar.extractfile(m).read())
    return out
