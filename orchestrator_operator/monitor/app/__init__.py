"""The monitoring app (`orchestrator app`): report merge, topologies, series, REST/WebSocket
API, controls, the UI's routes."""
