import sys

from sceneparse.cli import main

sys.exit(main())
