"""`python -m buddycloud` runs the `buddycloud` command."""

from __future__ import annotations

from buddycloud.cli import main

raise SystemExit(main())
