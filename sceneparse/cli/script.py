"""Running a ``tools/`` or ``demos/`` script the way the ``sceneparse`` command runs its
commands: an error sceneparse raises on purpose, or a file that cannot be read or written, is
one line on stderr and exit code 1; Ctrl-C is exit code 130; neither prints a traceback.

    if __name__ == "__main__":
        sys.exit(run_script(main))
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from sceneparse.errors import SceneparseError

__all__ = ["run_script"]


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
