"""`orchestrator marathon import|plan`: from a live Marathon to MarathonApp manifests in git,
and a readiness report for the move to Kubernetes (issue 21)."""
