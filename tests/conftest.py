import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


def stanford_archive() -> Path:
    root = Path(os.environ.get("SCENEPARSE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root / "stanford-background" / "iccv09Data.tar.gz"


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
