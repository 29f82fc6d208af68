import sys

from crmd.cli import main

sys.exit(main())
