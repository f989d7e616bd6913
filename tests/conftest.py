import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

# tests/synthetic.py (small synthetic scenes) importable from every test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data() -> Path:
    """The data root, by the package's one rule ($SCENEPARSE_DATA, else ../shared/data beside the checkout)."""
    from sceneparse.data import data_root

    return data_root()


def stanford_archive() -> Path:
    return shared_data() / "stanford-background" / "iccv09Data.tar.gz"


def data_required() -> bool:
    """SCENEPARSE_REQUIRE_DATA=1 (CI sets it, in .ci/run) makes a missing dataset a failure, not a skip."""
    return os.environ.get("SCENEPARSE_REQUIRE_DATA", "").lower() not in ("", "0", "false", "no")


def missing_data_reason(name: str, path: Path, how: str = "") -> str:
    how = how or f"get it with `sceneparse data download {name}`"
    return f"dataset {name} not found at {path}: {how}, or set SCENEPARSE_DATA to the folder that holds the datasets"


def require_data(name: str, path: Path, is_file: bool = False, how: str = "") -> Path:
    """``path`` of dataset ``name`` if it is there; else skip the test with how to get it (fail under
    SCENEPARSE_REQUIRE_DATA=1, so that CI never passes by skipping)."""
    if path.is_file() if is_file else path.exists():
        return path
    reason = missing_data_reason(name, path, how)
    if data_required():
        pytest.fail(f"{reason} (SCENEPARSE_REQUIRE_DATA is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def siftflow_path() -> Path:
    return require_data("siftflow", shared_data() / "siftflow" / "SiftFlowDataset.zip", is_file=True)


@pytest.fixture(scope="session")
def camvid_path() -> Path:
    return require_data("camvid", shared_data() / "camvid" / "CamVid")


@pytest.fixture(scope="session")
def nyu_frames() -> Path:
    return require_data("nyuv2", shared_data() / "nyuv2" / "frames")


@pytest.fixture(scope="session")
def sevenscenes_path() -> Path:
    how = "copy frames of a 7-Scenes sequence (frame-NNNNNN.color.jpg, .depth.png, .pose.txt) there"
    return require_data("rgbd-sequence-7scenes", shared_data() / "rgbd-sequence-7scenes", how=how)


@pytest.fixture(scope="session")
def nyu_meta() -> Path:
    return require_data("nyuv2", shared_data() / "nyuv2" / "meta")


@pytest.fixture(scope="session")
def stanford_path() -> Path:
    return require_data("stanford-background", stanford_archive(), is_file=True)


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
