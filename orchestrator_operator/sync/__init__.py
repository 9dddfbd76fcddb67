"""The ZooKeeper sync engine (`orchestrator zk-sync run|verify`) and, in controller/, the sync
controller that runs one engine per ZkMigration."""
