"""Pure functions from a spec (and the operator's settings) to the Kubernetes objects it wants:
no I/O."""
