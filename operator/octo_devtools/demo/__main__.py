import sys

from octo_devtools.demo.cli import main

sys.exit(main())
