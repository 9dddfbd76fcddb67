"""The simulated Marathon: HA leader latch, ZooKeeper state, REST API, scheduler loop."""
