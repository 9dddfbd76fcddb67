"""`python -m sim {master,agent,marathon} ...`."""

from sim.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
