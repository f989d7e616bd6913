"""``sceneparse serve`` (sceneparse/cli/serve.py): its options, checked before the model loads."""

import pytest

from sceneparse.cli import main


@pytest.mark.parametrize("port, message", [("70000", "give 1 to 65535 (or 0: a free port), got 70000"),
                                           ("-1", "got -1"), ("http", "not a port number: 'http'")])  # fmt: skip
def test_exception_ports_outside_the_range_are_usage_errors(port, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", "--port", port])
    assert done.value.code == 2 and message in capsys.readouterr().err


def test_feature_port_zero_asks_for_a_free_port():
    from sceneparse.cli.serve import build_parser

    assert build_parser().parse_args(["--port", "0"]).port == 0
    assert build_parser().parse_args(["--port", "65535"]).port == 65535


@pytest.mark.parametrize("flag, value, message", [
    ("--max-pixels", "-5", "give a number of at least 1, got -5"),  # every image was refused with 413
    ("--max-upload-mb", "0", "give a number above 0, got 0"),  # every upload was refused
    ("--max-video-mb", "-1", "give a number above 0, got -1"),
    ("--max-video-frames", "-4", "give a number of at least 0, got -4"),
    ("--max-wait-ms", "-3", "give a number of at least 0, got -3"),  # failed after the model loaded
    ("--max-upload-mb", "nan", "give a number above 0, got nan"),
    ("--max-pixels", "1e6", "not an integer: '1e6'"),
])  # fmt: skip
def test_exception_limits_are_usage_errors_before_the_model_loads(flag, value, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", flag, value])
    assert done.value.code == 2 and f"{flag}: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("env, argv", [("", []), ("secret", ["--token", " "])])
def test_exception_an_empty_token_is_refused_before_the_model_loads(env, argv, monkeypatch, caplog):
    """SCENEPARSE_TOKEN= (set but empty) made a service that took 'Authorization: Bearer ' with nothing after it."""
    monkeypatch.setenv("SCENEPARSE_TOKEN", env)
    monkeypatch.setattr("sceneparse.cli.serve.load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["serve", *argv]) == 1
    assert "the token is empty (--token or $SCENEPARSE_TOKEN)" in caplog.text


@pytest.mark.parametrize("host, token, warned", [("0.0.0.0", None, True), ("0.0.0.0", "secret", False),
                                                  ("127.0.0.1", None, False)])  # fmt: skip
def test_feature_a_warning_when_open_to_the_network_without_a_token(host, token, warned, monkeypatch, caplog):
    import uvicorn

    from sceneparse import SceneParser

    monkeypatch.delenv("SCENEPARSE_TOKEN", raising=False)
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.host))
    monkeypatch.setattr("sceneparse.cli.serve.load_model", lambda *a, **k: SceneParser.from_pretrained())
    argv = ["serve", "--host", host, "--threads", "1"] + (["--token", token] if token else [])
    assert main(argv) == 0 and served == [host]
    assert ("without a token: anyone who reaches this machine can use the service" in caplog.text) == warned
