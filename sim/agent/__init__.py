"""The simulated Mesos agent: leader detection, (re-)registration, checkpointed tasks."""
