"""The sync controller (`orchestrator zk-sync controller`): watches ZkMigrations, runs their
sync engines, writes status.sync."""
