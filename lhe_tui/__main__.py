import sys

from lhe_tui.cli.main import main

if __name__ == "__main__":   # a run process started by spawn imports this module again: it must not run
    sys.exit(main())
