"""Loaded by every Python process started with this directory on PYTHONPATH (scripts/run.sh
does so for the local platform): with $TESTENV_HOSTS_FILE set, the cluster's names in that
file resolve (testenv/cluster_dns.py)."""

import os

if os.environ.get("TESTENV_HOSTS_FILE"):
    from testenv.cluster_dns import install

    install(os.environ["TESTENV_HOSTS_FILE"])
