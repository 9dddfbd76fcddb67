"""Operator-driven rolling restarts of quorum members (ZooKeeper servers, Mesos masters)."""
