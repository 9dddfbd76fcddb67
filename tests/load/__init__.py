"""Load tests (Locust): the monitoring app's REST API and WebSocket, and the operator under
many custom resources. `make load` or `python -m tests.load.run --help`; docs/delivery.md."""
