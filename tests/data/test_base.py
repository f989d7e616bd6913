"""What every dataset shares (sceneparse/data/base.py): the data root's one rule and the
not-found error that says how to get the data."""

from pathlib import Path

import pytest

import sceneparse
from sceneparse.data import data_root
from sceneparse.data.base import dataset_not_found

CHECKOUT = Path(sceneparse.__file__).resolve().parents[1]


def test_feature_data_root_is_beside_the_checkout_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SCENEPARSE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # the old default, ../shared/data, followed the current folder
    assert data_root() == CHECKOUT.parent / "shared" / "data"
    monkeypatch.setenv("SCENEPARSE_DATA", str(tmp_path / "mine"))
    assert data_root() == tmp_path / "mine"


def test_feature_tests_and_commands_read_the_same_root(monkeypatch, tmp_path):
    from conftest import shared_data

    monkeypatch.delenv("SCENEPARSE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert shared_data() == data_root()


def test_exception_not_found_names_the_flag_and_the_download():
    err = dataset_not_found("camvid", "CamVid", Path("/nowhere/CamVid"))
    text = str(err)
    assert "`sceneparse data download camvid`" in text and "--data-root" in text and "SCENEPARSE_DATA" in text
    assert "(`root`" not in text and "pass its path" not in text
    with pytest.raises(FileNotFoundError):
        raise err
