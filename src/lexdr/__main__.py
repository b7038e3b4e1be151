import sys

from lexdr.cli import main

sys.exit(main())
