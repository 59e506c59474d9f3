import sys

from negbench.cli import main

sys.exit(main())
