"""ZkMigration: the six-phase state machine (pure), what it observes, and what it archives."""
