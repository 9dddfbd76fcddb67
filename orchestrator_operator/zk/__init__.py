"""ZooKeeper toolkit shared by the operator, the sync engine and zk-migrate: connections, the
client pool, four-letter words, tree reads and writes."""
