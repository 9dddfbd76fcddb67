"""ZkMigration: handlers, the six-phase state machine (machine, observation: pure), what it
observes, A's archive, metrics."""
