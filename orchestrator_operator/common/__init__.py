"""What every program needs: the Kubernetes API client, the health and metrics server,
manifests and owners, status conditions, a TTL cache, secrets and logging set-up."""
