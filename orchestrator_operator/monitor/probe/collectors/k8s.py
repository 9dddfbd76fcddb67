"""Optional Kubernetes collector: pods on this node and services, with a service account or a
kubeconfig. Disabled (returns nothing) when neither is available."""

from __future__ import annotations

import os
from typing import Any

from orchestrator_operator.monitor.report import LIMITS, Pod, Service, bounded_labels


def _strip_runtime(container_id: str) -> str:
    return container_id.split("://", 1)[1] if "://" in container_id else container_id


class KubernetesCollector:
    def __init__(self, node_name: str, kubeconfig: str | None = None) -> None:
        self.node_name = node_name
        self.kubeconfig = kubeconfig
        self._api: Any = None
        self.enabled = True
        self.last_error = ""

    def _core(self) -> Any:
        if self._api is None:
            from kubernetes import client
            from kubernetes import config as kube_config

            config: Any = kube_config
            if os.environ.get("KUBERNETES_SERVICE_HOST") and self.kubeconfig is None:
                config.load_incluster_config()
            else:
                config.load_kube_config(config_file=self.kubeconfig)
            self._api = client.CoreV1Api()
        return self._api

    def collect(self) -> tuple[list[Pod], list[Service]]:
        if not self.enabled:
            return [], []
        try:
            api = self._core()
        except Exception as exc:  # no credentials: switch off for good
            self.enabled = False
            self.last_error = str(exc)
            return [], []
        try:
            pods = api.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={self.node_name}", limit=LIMITS.pods
            ).items
            services = api.list_service_for_all_namespaces(limit=LIMITS.services).items
        except Exception as exc:
            self.last_error = str(exc)
            return [], []
        return [self._pod(p) for p in pods], [self._service(s) for s in services]

    @staticmethod
    def _pod(p: Any) -> Pod:
        statuses = (p.status.container_statuses or []) if p.status else []
        return Pod(
            uid=p.metadata.uid,
            name=p.metadata.name,
            namespace=p.metadata.namespace,
            node=p.spec.node_name or "",
            phase=(p.status.phase or "") if p.status else "",
            ip=(p.status.pod_ip or "") if p.status else "",
            labels=bounded_labels(p.metadata.labels),
            containers=tuple(_strip_runtime(s.container_id) for s in statuses if s.container_id),
        )

    @staticmethod
    def _service(s: Any) -> Service:
        return Service(
            uid=s.metadata.uid,
            name=s.metadata.name,
            namespace=s.metadata.namespace,
            cluster_ip=s.spec.cluster_ip or "",
            selector=bounded_labels(s.spec.selector),
            ports=tuple(int(p.port) for p in (s.spec.ports or [])),
        )
