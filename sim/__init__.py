"""Behavioural simulator of Apache Mesos masters and agents and of Marathon (a test peer).

It follows their documented HTTP APIs and registers in a real ZooKeeper exactly as they do.
See sim/README.md for what it follows and what it simplifies.
"""

VERSION = "1.11.0"
MARATHON_VERSION = "1.11.24"
