"""The monitoring probe (`orchestrator probe`): collectors and the sender."""
