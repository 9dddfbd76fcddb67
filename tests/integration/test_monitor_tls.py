"""TLS between the probe and the monitoring app, and for the UI (issue 17, point 7): a real
`orchestrator app` process serving HTTPS from a directory in cert-manager's Secret form,
laid out and rotated as the kubelet does (`testenv/tls_secret.py`), and real
`orchestrator probe` processes verifying it."""

from __future__ import annotations

import itertools
import secrets
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.operator.builders.probefleet import build_children, fleet_owner
from testenv.processes import ManagedProcess, free_port
from testenv.tls_secret import TlsCa, tls_secret, write_secret_volume

TOKEN = secrets.token_urlsafe(24)
HOST = "tls-probe-host"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def orchestrator(name: str, args: list[str], log_dir: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "orchestrator_operator.cli", *args]
    proc = ManagedProcess(name, argv, log_dir)
    proc.start()
    return proc


def served_serial(port: int, ca_file: Path) -> int:
    """The serial number of the certificate the app presents to a new connection."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


class App:
    def __init__(self, tmp: Path, client_auth: str = "none") -> None:
        self.ca = TlsCa("monitoring-ca")
        self.secret = tmp / "app-tls"
        self.issued = self.ca.issue("monitoring-app", hosts=("127.0.0.1", "localhost"))
        write_secret_volume(self.secret, tls_secret(self.ca, self.issued))
        self.ca_file = tmp / "ca.crt"
        self.ca_file.write_bytes(self.ca.pem)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        args = ["app", "--listen", "127.0.0.1", "--port", str(self.port), "--token", TOKEN,
                "--tls-dir", str(self.secret), "--tls-client-auth", client_auth]  # fmt: skip
        self.proc = orchestrator(f"tls-app-{self.port}", args, tmp)
        self.log_dir = tmp

    def client(self, cert: tuple[str, str] | None = None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if cert is not None:
            context.load_cert_chain(*cert)
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
            verify=context,
        )

    def wait_ready(self, cert: tuple[str, str] | None = None) -> None:
        def up() -> bool:
            assert self.proc.running(), self.proc.log_tail(40)
            try:
                with self.client(cert) as http:
                    return http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, "the app on HTTPS")

    def probe(self, name: str, *flags: str) -> ManagedProcess:
        args = ["probe", "--app", self.url, "--token", TOKEN, "--interval", "0.5",
                "--no-docker", "--no-processes", "--no-connections", "--hostname", name,
                *flags]  # fmt: skip
        return orchestrator(f"tls-probe-{name}-{self.port}", args, self.log_dir)

    def hosts_shown(self, cert: tuple[str, str] | None = None) -> str:
        with self.client(cert) as http:
            return http.get("/api/topology/hosts").text


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = App(tmp_path)
    try:
        app.wait_ready()
        yield app
    finally:
        app.proc.stop()


def test_a_rotated_certificate_is_served_without_a_restart(app: App) -> None:
    pid = app.proc.pid
    assert served_serial(app.port, app.ca_file) == app.issued.serial
    renewed = app.ca.issue("monitoring-app", hosts=("127.0.0.1", "localhost"))
    write_secret_volume(app.secret, tls_secret(app.ca, renewed))  # the kubelet's swap

    wait_until(lambda: served_serial(app.port, app.ca_file) == renewed.serial, 30, "the new cert")
    assert app.proc.pid == pid and app.proc.running()

    # A rotation that leaves a key not matching its certificate keeps the last good pair.
    broken = app.ca.issue("monitoring-app", hosts=("127.0.0.1",))
    files = tls_secret(app.ca, broken)
    files["tls.key"] = app.ca.issue("other", hosts=("127.0.0.1",)).key_pem
    write_secret_volume(app.secret, files)

    def refused_and_kept() -> bool:
        assert served_serial(app.port, app.ca_file) == renewed.serial  # each is a handshake
        return "do not load" in app.proc.log_tail(40)

    wait_until(refused_and_kept, 30, "the refusal in the log")
    with app.client() as http:  # the UI and API still answer
        assert http.get("/api/topology/hosts").status_code == 200


def test_the_probe_verifies_the_app_against_its_ca(app: App, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-ca.crt"
    wrong.write_bytes(TlsCa("someone-else").pem)
    refused = app.probe("wrong-ca-host", "--tls-ca", str(wrong))
    trusted = app.probe(HOST, "--tls-ca", str(app.ca_file))
    try:
        wait_until(lambda: HOST in app.hosts_shown(), 60, "the trusting probe's host")
        wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in refused.log_tail(40), 60, "the refusal")
        assert "wrong-ca-host" not in app.hosts_shown()
        assert refused.running()  # it keeps trying, it does not crash
    finally:
        refused.stop()
        trusted.stop()


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    app = App(tmp_path, client_auth="required")
    client_dir = tmp_path / "probe-tls"
    write_secret_volume(client_dir, tls_secret(app.ca, app.ca.issue(HOST, client=True)))
    cert = (str(client_dir / "tls.crt"), str(client_dir / "tls.key"))
    probe = without = None
    try:
        app.wait_ready(cert=cert)
        with pytest.raises(httpx.TransportError), app.client() as http:
            http.get("/healthz")
        without = app.probe("no-cert-host", "--tls-ca", str(app.ca_file))
        probe = app.probe(HOST, "--tls-ca", str(app.ca_file), "--tls-client-dir", str(client_dir))
        wait_until(lambda: HOST in app.hosts_shown(cert=cert), 60, "the probe with a cert")
        wait_until(lambda: "control channel" in without.log_tail(40), 60, "the refusal")
        assert "no-cert-host" not in app.hosts_shown(cert=cert)
    finally:
        for proc in (probe, without, app.proc):
            if proc is not None:
                proc.stop()


def _volumes_as_the_kubelet_lays_them(
    pod: dict[str, Any], container: dict[str, Any], secrets: dict[str, dict[str, bytes]], root: Path
) -> dict[str, str]:
    """Each Secret volume of `container` written under `root` (only the keys its `items`
    name, as the kubelet projects them); mount path -> the directory written."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    out: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("secret")
        if source is None:
            continue
        data = secrets[source["secretName"]]
        if "items" in source:
            data = {i["path"]: data[i["key"]] for i in source["items"]}
        directory = root / mount["name"]
        write_secret_volume(directory, data)
        out[mount["mountPath"]] = str(directory)
    return out


def _tls_flags(args: list[str], mounts: dict[str, str]) -> list[str]:
    """The container's TLS flags, with its mount paths replaced by where they were written."""
    out: list[str] = []
    for flag, value in itertools.pairwise(args):
        if flag.startswith("--tls-"):
            for path, directory in mounts.items():
                value = value.replace(path, directory)
            out += [flag, value]
    return out


def test_a_probefleet_with_mutual_tls_gives_the_programs_what_they_need(tmp_path: Path) -> None:
    """The flags and Secret volumes the ProbeFleet builder writes for `app.tls` (mutual TLS),
    laid out as the kubelet would, run the real app and probe: the probe, which gets the
    CA alone of the app's Secret, verifies the app and presents its own certificate."""
    spec = ProbeFleetSpec.model_validate(
        {"app": {"tls": {"secretName": "app-tls", "clientAuth": "required",
                         "probeSecretName": "probe-tls"}}}
    )  # fmt: skip
    children = {c["kind"]: c for c in build_children(fleet_owner("scope", "mon", "u"), spec)}
    app_pod = children["Deployment"]["spec"]["template"]["spec"]
    probe_pod = children["DaemonSet"]["spec"]["template"]["spec"]
    app_container, probe_container = app_pod["containers"][0], probe_pod["containers"][0]
    ca = TlsCa("fleet-ca")
    secrets = {
        "app-tls": tls_secret(ca, ca.issue("scope-app", hosts=("127.0.0.1",))),
        "probe-tls": tls_secret(ca, ca.issue("probe", client=True)),
    }
    app_mounts = _volumes_as_the_kubelet_lays_them(app_pod, app_container, secrets, tmp_path / "a")
    probe_mounts = _volumes_as_the_kubelet_lays_them(
        probe_pod, probe_container, secrets, tmp_path / "p"
    )
    # the probe's copy of the app's Secret holds the CA, not the app's key
    app_ca_dir = Path(next(d for p, d in probe_mounts.items() if p.endswith("app-ca")))
    assert sorted(f.name for f in app_ca_dir.iterdir() if not f.name.startswith("..")) == ["ca.crt"]
    port = free_port()
    app_args = ["app", "--listen", "127.0.0.1", "--port", str(port), "--token", TOKEN,
                *_tls_flags(app_container["args"], app_mounts)]  # fmt: skip
    assert "--tls-client-auth" in app_args
    app_proc = orchestrator(f"fleet-tls-app-{port}", app_args, tmp_path)
    tls_flags = _tls_flags(probe_container["args"], probe_mounts)
    probe_args = ["probe", "--app", f"https://127.0.0.1:{port}", "--token", TOKEN,
                  "--interval", "0.5", "--no-docker", "--no-processes", "--no-connections",
                  "--hostname", HOST, *tls_flags]  # fmt: skip
    assert "--tls-ca" in probe_args and "--tls-client-dir" in probe_args
    probe_proc = orchestrator(f"fleet-tls-probe-{port}", probe_args, tmp_path)
    client_dir = Path(probe_mounts["/etc/orchestrator/probe-tls"])
    cert = (str(client_dir / "tls.crt"), str(client_dir / "tls.key"))
    context = ssl.create_default_context(cafile=str(app_ca_dir / "ca.crt"))
    context.load_cert_chain(*cert)
    try:

        def shown() -> bool:
            assert app_proc.running(), app_proc.log_tail(40)
            assert probe_proc.running(), probe_proc.log_tail(40)
            try:
                with httpx.Client(verify=context, timeout=5) as http:
                    answer = http.get(
                        f"https://127.0.0.1:{port}/api/topology/hosts",
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
            except httpx.TransportError:
                return False
            return HOST in answer.text

        wait_until(shown, 60, "the probe's host through mutual TLS")
    finally:
        probe_proc.stop()
        app_proc.stop()
