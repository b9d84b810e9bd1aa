"""``python -m bench``: run the HTTP benchmark (``--help`` lists the options)."""

from bench.cli import main

raise SystemExit(main())
