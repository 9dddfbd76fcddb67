"""The operator (`orchestrator run`): Kopf registration in main.py, pure builders, one folder
per kind (handlers, observation, status, metrics)."""
