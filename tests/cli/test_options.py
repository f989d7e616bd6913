"""Options shared by the commands and tools (sceneparse.cli.options)."""

import argparse

import pytest

from sceneparse.cli.options import frame_slice


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:150", slice(0, 150)), ("100:", slice(100, None)), (":50", slice(None, 50)), (":", slice(None, None))],
)
def test_frame_slice_reads_start_and_end(text, expected):
    assert frame_slice(text) == expected
    assert list(range(200)[frame_slice(text)]) == list(range(200))[expected]


@pytest.mark.parametrize("text", ["150", "a:b", "-5:", "0:-1", "1:2:3", ""])
def test_frame_slice_names_what_it_got(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"START:END.*got {text!r}"):
        frame_slice(text)


def test_frame_slice_as_an_argparse_type_is_a_usage_error(capsys):
    ap = argparse.ArgumentParser(prog="tool")
    ap.add_argument("--frames", type=frame_slice, default="0:50")
    assert ap.parse_args([]).frames == slice(0, 50)
    with pytest.raises(SystemExit):
        ap.parse_args(["--frames", "x"])
    assert "--frames" in capsys.readouterr().err
