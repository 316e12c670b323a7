from lhe_tui.cli.main import main
import sys

sys.exit(main())
