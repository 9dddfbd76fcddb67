"""MarathonApp: a Marathon application kept as its custom resource says."""
