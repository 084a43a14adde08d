import sys

from tefviz.cli import main

sys.exit(main())
