"""Running a ``tools/`` or ``demos/`` script the way the ``sceneparse`` command runs its
commands: an error sceneparse raises on purpose, or a file that cannot be read or written, is
one line on stderr and exit code 1; Ctrl-C is exit code 130; neither prints a traceback.

    if __name__ == "__main__":
        sys.exit(run_script(main))
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from sceneparse.errors import SceneparseError

__all__ = ["run_script", "positive_int", "json_object", "json_list", "number_list"]


def run_script(main: Callable, argv: list[str] | None = None) -> int:
    """Call ``main()`` (or ``main(argv)``) and return the script's exit code.

    A ``main`` that returns an integer gives that code; anything else (a dict of figures,
    None) is success, 0. Errors that are not sceneparse's or the file system's are bugs and
    keep their traceback.
    """
    name = Path(sys.argv[0]).name or "script"
    try:
        code = main() if argv is None else main(argv)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (SceneparseError, OSError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _json(text: str, kind: type, name: str):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, kind):
        raise argparse.ArgumentTypeError(f"expected a JSON {name}, got {text!r}")
    return value


def json_object(text: str) -> dict:
    """An argparse type: a JSON object."""
    return _json(text, dict, "object {...}")


def json_list(text: str) -> list:
    """An argparse type: a JSON list."""
    return _json(text, list, "list [...]")


def number_list(kind: type = float):
    """An argparse type: comma-separated numbers of ``kind`` above 0 (``"0.5,0.75"``)."""

    def parse(text: str) -> list:
        try:
            values = [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            values = []
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s above 0, got {text!r}")
        return values

    return parse
