"""Error messages that name the problem (sceneparse/errors.py): a mistyped name gets the closest known one."""

import pytest

from sceneparse import create_model
from sceneparse.errors import ConfigError, did_you_mean


def test_feature_did_you_mean_names_the_closest_known_name_only_when_one_is_close():
    assert did_you_mean("epoch", ["lr", "epochs", "seed"]) == " (did you mean 'epochs'?)"
    assert (
        did_you_mean("msconvnet_papr", ["msconvnet", "msconvnet_paper", "encdec"])
        == " (did you mean 'msconvnet_paper'?)"
    )
    assert did_you_mean("qwxz", ["lr", "epochs"]) == "" and did_you_mean("x", []) == ""
    with pytest.raises(
        ConfigError, match=r"unknown model 'msconvnet_papr' \(did you mean 'msconvnet_paper'\?\); available"
    ):
        create_model("msconvnet_papr", num_classes=3)
