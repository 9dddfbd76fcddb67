"""A minimal static volume provisioner for the local control plane.

testenv has no storage driver, so a PersistentVolumeClaim would stay Pending and every
StatefulSet pod with a volumeClaimTemplate would stay unschedulable. This thread watches for
unbound claims and creates a hostPath PersistentVolume pre-bound to each (`claimRef`); the
real PV controller in kube-controller-manager then binds them, as it would in a cluster with
static provisioning.
"""

from __future__ import annotations

import threading
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

ApiCall = Callable[[str, str, Any], Any]
POLL_SECONDS = 0.5


def volume_for_claim(claim: dict[str, Any], root: Path) -> dict[str, Any]:
    meta = claim["metadata"]
    spec = claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"testenv-{meta['uid']}", "labels": {"testenv/provisioned": "true"}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "hostPath": {"path": str(root / meta["namespace"] / meta["name"])},
            "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        },
    }


class VolumeProvisioner:
    def __init__(self, api: ApiCall, root: Path) -> None:
        self._api = api
        self._root = root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="testenv-provisioner", daemon=True)
        self._done: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.provision_pending()
            except (urllib.error.URLError, OSError, ValueError):
                continue  # the API server may be stopping; try again next round

    def provision_pending(self) -> None:
        claims = self._api("GET", "/api/v1/persistentvolumeclaims", None)["items"]
        for claim in claims:
            uid = claim["metadata"]["uid"]
            if claim.get("status", {}).get("phase") != "Pending" or uid in self._done:
                continue
            try:
                self._api("POST", "/api/v1/persistentvolumes", volume_for_claim(claim, self._root))
            except urllib.error.HTTPError as error:
                if error.code != 409:
                    raise
            self._done.add(uid)
