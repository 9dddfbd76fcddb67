"""MesosCluster: handlers (registration and the order of steps), observe, status, metrics,
quorum changes (ZooKeeper scaling, rolling restarts) and maintenance."""
