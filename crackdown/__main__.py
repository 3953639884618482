import sys

from crackdown.cli import main

sys.exit(main())
