"""ProbeFleet: handlers, what is observed (probes reporting to the app) and status."""
