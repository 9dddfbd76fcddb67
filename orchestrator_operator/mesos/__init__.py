"""Mesos and Marathon toolkit: the leading master read from ZooKeeper, the masters' HTTP API,
the maintenance schedule (pure)."""
