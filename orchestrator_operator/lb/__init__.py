"""`orchestrator lb`: the load balancer a MesosCluster runs for its Marathon apps
(docs/loadbalancer.md)."""
