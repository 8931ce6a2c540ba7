"""Allow ``python -m emgfb``."""

from emgfb.cli import main

raise SystemExit(main())
