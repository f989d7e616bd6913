"""The documentation names only what exists: every ``sceneparse`` command and option, every
``tools/`` and ``demos/`` script and option, and every ``configs/`` file that README.md and
docs/*.md show; configs/refine.yaml lists each refiner parameter with the code's default; README's
Layout is complete, its Python version the one the setup needs, and its Python snippets run."""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import runpy
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from sceneparse.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DATA_ACTIONS = ("list", "prepare", "download")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
# a command or script named in a line: `sceneparse CMD [ACTION]` or tools/NAME.py, demos/NAME.py
NAMED = re.compile(r"\bsceneparse\s+([a-z]+)(?:\s+([a-z]+))?|\b((?:tools|demos)/[a-z_]+\.py)")


def _help(argv: list[str], run) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = run(argv)
        except SystemExit as stop:
            code = stop.code
    assert code in (0, None), f"{argv} --help failed"
    return out.getvalue()


@cache
def options(command: tuple[str, ...]) -> frozenset[str]:
    """The options that ``--help`` lists for ``("sceneparse", CMD[, ACTION])`` or ``(SCRIPT,)``."""
    if command[0] == "sceneparse":
        text = _help([*command[1:], "--help"], main)
    else:

        def run(argv):
            saved = sys.argv
            sys.argv = [str(ROOT / command[0]), *argv]
            try:
                runpy.run_path(str(ROOT / command[0]), run_name="__main__")
            finally:
                sys.argv = saved

        text = _help(["--help"], run)
    return frozenset(OPTION.findall(text))


def doc_lines():
    """(doc, line number, text, fenced) of each code line (its shell comment cut off) and each
    inline code span of the docs."""
    for doc in DOCS:
        fenced = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                yield doc, number, line.split(" #")[0], True
            else:
                for span in re.findall(r"`([^`]+)`", line):
                    yield doc, number, span, False


def named_commands():
    """(where, command, the options written after it) for each command or script in the docs."""
    for doc, number, text, fenced in doc_lines():
        where = f"{doc.name}:{number}: {text.strip()}"
        for match in NAMED.finditer(text):
            if match.group(3):
                command = (match.group(3),)
            elif match.group(1) in COMMANDS:
                command = ("sceneparse", match.group(1))
                if match.group(1) == "data" and match.group(2) in DATA_ACTIONS:
                    command += (match.group(2),)
            else:
                # a shell line starting `sceneparse WORD` names a command; prose and Python do not
                if fenced and text.lstrip().startswith("sceneparse "):
                    yield where, ("sceneparse", match.group(1)), []
                continue
            rest = re.split(r"[;|]|\bsceneparse\s+[a-z]+|\b(?:tools|demos)/", text[match.end() :])[0]
            yield where, command, OPTION.findall(rest)


def test_doc_commands_and_scripts_exist():
    """Feature: each command and script the docs name exists."""
    missing = [
        where
        for where, command, _ in named_commands()
        if (command[0] == "sceneparse" and command[1] not in COMMANDS)
        or (command[0] != "sceneparse" and not (ROOT / command[0]).is_file())
    ]
    assert not missing, "\n".join(missing)


def test_doc_options_exist():
    """Feature: each option written after a command or script in the docs is one of its options."""
    wrong = [
        f"{where}: {' '.join(command)} has no {option}"
        for where, command, opts in named_commands()
        if command[0] != "sceneparse" or command[1] in COMMANDS
        if command[0] == "sceneparse" or (ROOT / command[0]).is_file()
        for option in opts
        if option not in options(command)
    ]
    assert not wrong, "\n".join(wrong)


def test_doc_configs_exist():
    """Feature: each configs/ file the docs name exists."""
    missing = [
        f"{doc.name}: {name}"
        for doc in DOCS
        for name in re.findall(r"configs/[\w.-]+\.ya?ml", doc.read_text())
        if not (ROOT / name).is_file()
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("msconvnet*.yaml")), ids=lambda p: p.name)
def test_train_config_keys_are_train_options(config):
    """Feature: a training config's keys are the train command's options (README, Layout)."""
    train = {option[2:].replace("-", "_") for option in options(("sceneparse", "train"))}
    assert set(yaml.safe_load(config.read_text())) <= train


def test_refine_config_lists_every_parameter_with_its_default():
    """Feature: configs/refine.yaml lists every parameter of every registered refiner with the
    default its constructor has (README: it 'lists every parameter's default')."""
    from sceneparse.refine.base import REFINERS

    listed = yaml.safe_load((ROOT / "configs" / "refine.yaml").read_text())["refiners"]
    assert set(listed) == set(REFINERS)
    for name, cls in REFINERS.items():
        defaults = {
            key: param.default
            for key, param in inspect.signature(cls.__init__).parameters.items()
            if param.default is not inspect.Parameter.empty
        }
        assert listed[name] == defaults, name


def test_readme_layout_names_every_tool_and_subpackage():
    """Feature: README's Layout names every tools/ script and every folder of the package."""
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout") : text.index("## Development")]
    names = [path.name for path in sorted((ROOT / "tools").glob("*.py"))]
    names += [
        f"{path.name}/"
        for path in sorted((ROOT / "sceneparse").iterdir())
        if path.is_dir() and (path / "__init__.py").is_file()
    ]
    missing = [name for name in names if not re.search(rf"(?<![\w/]){re.escape(name)}", layout)]
    assert not missing, missing


def test_readme_python_version_is_the_one_setup_and_torch_need():
    """Feature: the Python README asks for is setup.py's python_requires, and the PyTorch the
    setup scripts pin supports it (torch 2.13.0 needs 3.10; README said 3.9+)."""
    from importlib.metadata import metadata

    readme = re.search(r"need only Python 3\.(\d+)\+", (ROOT / "README.md").read_text())
    setup = re.search(r'python_requires=">=3\.(\d+)"', (ROOT / "setup.py").read_text())
    pinned = re.search(r'TORCH="torch==([\d.]+)"', (ROOT / "scripts" / "setup_env.sh").read_text())
    assert readme and setup and pinned
    assert readme[1] == setup[1]
    if metadata("torch")["Version"].split("+")[0] == pinned[1]:
        torch_minimum = re.search(r">=\s*3\.(\d+)", metadata("torch")["Requires-Python"])
        assert int(torch_minimum[1]) <= int(readme[1])


def _readme_python(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, marker
    return found[0]


def test_readme_python_snippet_runs_as_written(real_images, tmp_path, monkeypatch):
    """Feature: README's first Python snippet runs unchanged on a real photograph named as there."""
    import shutil

    shutil.copy(next(real_images.glob("*.jpg")), tmp_path / "street.jpg")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(_readme_python('rgb = read_image("street.jpg")'), scope)
    assert scope["result"].labels.shape == scope["rgb"].shape[:2]
    assert scope["overlay"].shape == scope["rgb"].shape


def test_readme_robotics_snippet_runs_as_written(sevenscenes_path, tmp_path, monkeypatch):
    """Feature: README's labelled cloud and semantic map snippet runs unchanged (its data path
    ../shared/data read as the data root) and writes what it says."""
    from optional import require

    require("open3d", "pip install -e '.[3d]'")
    code = _readme_python("SemanticMap(")
    assert '"../shared/data/rgbd-sequence-7scenes"' in code
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code.replace('"../shared/data/rgbd-sequence-7scenes"', repr(str(sevenscenes_path))), scope)
    assert (tmp_path / "frame.ply").stat().st_size > 0 and (tmp_path / "map.npz").stat().st_size > 0
    assert len(scope["labels"]) == len(scope["confidence"]) == len(scope["cloud"].point.positions)
    assert set(scope["labels"].tolist()) <= set(range(len(scope["parser"].class_names))) | {255}


def test_readme_video_snippet_runs_as_written(real_images, camvid_path, tmp_path, monkeypatch):
    """Feature: README's video snippet, after its first one (which makes ``parser``), runs
    unchanged on a real video named as there and writes the overlay video and label PNGs."""
    import shutil

    import cv2

    shutil.copy(next(real_images.glob("*.jpg")), tmp_path / "street.jpg")
    frames = sorted((camvid_path / "val").iterdir())[:6]
    writer = cv2.VideoWriter(str(tmp_path / "drive.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 15, (480, 360))
    for path in frames:
        writer.write(cv2.resize(cv2.imread(str(path)), (480, 360)))
    writer.release()
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(_readme_python('rgb = read_image("street.jpg")'), scope)
    exec(_readme_python("parse_stream(open_source("), scope)
    assert scope["result"].index == len(frames) - 1
    assert scope["stats"]["frames"] == len(frames) and not scope["stats"]["failed"]
    assert (tmp_path / "labelled" / "overlay.mp4").stat().st_size > 0
    assert len(list((tmp_path / "labelled").glob("*_labels.png"))) == len(frames)
