import sys

from facebone.cli import main

sys.exit(main())
