"""``python -m mqttpush``: the command-line interface."""

from mqttpush.cli import main

raise SystemExit(main())
