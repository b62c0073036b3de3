# PyInstaller entry script for the one-file `edge` executable: runs edge.cli:main exactly
# as the `edge` console script installed by pip does.
import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
