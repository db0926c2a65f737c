"""`python -m walkout`: the same as the `walkout` command."""

import sys

from walkout.cli import main

sys.exit(main())
