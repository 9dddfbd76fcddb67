"""The zk-migrate CLI (`orchestrator zk-migrate`): start, status, advance, rollback, validate,
report, restore."""
