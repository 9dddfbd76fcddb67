"""Monitoring: the probe (probe/) and the app (app/), which share only the report format
(report.py)."""
