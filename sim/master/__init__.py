"""The simulated Mesos master: election in ZooKeeper, registry, operator HTTP API."""
