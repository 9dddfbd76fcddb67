"""orchestrator: a Kubernetes operator that runs Apache Mesos platforms."""

__version__ = "0.1.0"
