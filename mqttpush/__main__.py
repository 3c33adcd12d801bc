"""``python -m mqttpush``: the command-line interface."""

from mqttpush.tools.cli import main

raise SystemExit(main())
