"""`python -m orchestrator_operator ...`: the `orchestrator` command (testenv runs the lb so)."""

from orchestrator_operator.cli import main

raise SystemExit(main())
