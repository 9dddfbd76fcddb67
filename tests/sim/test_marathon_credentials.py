"""Conformance: Marathon 1.11's credentials: HTTP Basic auth on its API, its framework
credential towards Mesos, ZooKeeper digest auth, and its command line from the environment.

Each test names the Marathon 1.11 source it follows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from sim.cluster import SimCluster
from sim.marathon import auth
from sim.procs import SimProcess
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import marathon

SECRET = "pa55-w0rd"
FRAMEWORK_SECRET = "fw-s3cret"


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- the credentials value: api/HttpModule.scala createSecurityHandler


def test_http_credentials_parse_as_marathons_greedy_regex() -> None:
    # HttpModule.createSecurityHandler: "(.+):(.+)".r must match the whole value; greedy, so
    # the user runs to the LAST ':'; '.' matches no line break, so a trailing newline (a
    # Secret file written with echo) does not match and Marathon runs WITHOUT authentication.
    assert auth.parse_http_credentials("alice:pw") == auth.HttpCredentials("alice", "pw")
    assert auth.parse_http_credentials("alice:p:w") == auth.HttpCredentials("alice:p", "w")
    assert auth.parse_http_credentials("alice:pw\n") is None
    assert auth.parse_http_credentials("alicepw") is None
    assert "pw" not in repr(auth.parse_http_credentials("alice:pw"))


def test_a_password_with_a_colon_can_never_log_in() -> None:
    # Jetty 9.4 BasicAuthenticator splits the client's "user:password" at its FIRST ':', the
    # configured user ends at the last one: the two never agree.
    configured = auth.parse_http_credentials("alice:p:w")
    assert configured is not None
    assert not auth.basic_ok(_basic("alice", "p:w")["Authorization"], configured)
    good = auth.parse_http_credentials("alice:pw")
    assert good is not None
    assert auth.basic_ok(_basic("alice", "pw")["Authorization"], good)
    assert not auth.basic_ok(_basic("alice", "nope")["Authorization"], good)
    assert not auth.basic_ok("Bearer x", good)


# --- live: a cluster whose masters authenticate frameworks


@pytest.fixture(scope="module")
def secured(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    base = tmp_path_factory.mktemp("marathon-credentials")
    creds = base / "credentials.json"
    entry = {"principal": "marathon", "secret": FRAMEWORK_SECRET}
    creds.write_text(json.dumps({"credentials": [entry]}))
    creds.chmod(0o600)
    with SimCluster(
        _zk_ensemble_module.connect_string,
        masters=1,
        agents=0,
        marathons=0,
        base_dir=base,
        master_flags=["--authenticate_frameworks=true", f"--credentials={creds}"],
    ) as sim:
        yield sim


def _stop(*procs: SimProcess) -> None:
    for proc in procs:
        proc.stop(grace=5.0)


def _secret_file(path: Path, content: str) -> str:
    path.write_text(content)
    path.chmod(0o600)
    return str(path)


def _framework_env(monkeypatch: pytest.MonkeyPatch, secret_file: str) -> None:
    # Main.envToArgs: MARATHON_MESOS_AUTHENTICATION= (empty) is the bare flag.
    monkeypatch.setenv("MARATHON_MESOS_AUTHENTICATION", "")
    monkeypatch.setenv("MARATHON_MESOS_AUTHENTICATION_PRINCIPAL", "marathon")
    monkeypatch.setenv("MARATHON_MESOS_AUTHENTICATION_SECRET_FILE", secret_file)


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
def test_every_route_needs_the_http_credentials_followers_too(
    secured: SimCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # HttpModule: a ConstraintSecurityHandler on "/*" with a BasicAuthenticator (Jetty 9.4:
    # 401, WWW-Authenticate: basic realm="<--http_realm, Mesosphere>"): /ping is no exception
    # (SystemResource.ping itself checks nothing, the handler runs before it). The security
    # handler wraps the proxy filter: a follower checks the credentials, then forwards the
    # request, Authorization included, to the leader.
    monkeypatch.setenv("MARATHON_HTTP_CREDENTIALS", f"alice:{SECRET}")
    _framework_env(monkeypatch, _secret_file(tmp_path / "secret", FRAMEWORK_SECRET))
    zk = secured.marathon_zk + "-http"
    first, first_url = marathon(secured, "marathon-http-0", zk=zk)
    second, second_url = marathon(secured, "marathon-http-1", zk=zk)
    first.start()
    try:
        secured.wait_for(
            lambda: httpx.get(first_url + "/v2/info", headers=_basic("alice", SECRET)).json()[
                "elected"
            ],
            what="the first Marathon to lead",
        )
        second.start()
        secured.wait_for(
            lambda: (
                httpx.get(second_url + "/ping", headers=_basic("alice", SECRET)).status_code == 200
            ),
            what="the second Marathon to answer",
        )
        for url in (first_url, second_url):
            for path in ("/ping", "/v2/info", "/v2/apps", "/v2/leader"):
                refused = httpx.get(url + path, timeout=10)
                assert refused.status_code == 401, (url, path)
                assert refused.headers["WWW-Authenticate"] == 'basic realm="Mesosphere"'
                wrong = httpx.get(url + path, headers=_basic("alice", "nope"), timeout=10)
                assert wrong.status_code == 401
        proxied = httpx.get(second_url + "/v2/info", headers=_basic("alice", SECRET), timeout=10)
        assert proxied.status_code == 200 and proxied.json()["elected"] is True
        assert proxied.headers["X-Marathon-Via"] == "1.1 " + second_url.removeprefix("http://")
    finally:
        _stop(second, first)


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
def test_the_framework_authenticates_with_its_principal_and_secret_file(
    secured: SimCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # MarathonSchedulerDriver: --mesos_authentication with --mesos_authentication_principal
    # and the secret from --mesos_authentication_secret_file; FrameworkInfo.principal is set.
    _framework_env(monkeypatch, _secret_file(tmp_path / "secret", FRAMEWORK_SECRET))
    proc, url = marathon(secured, "marathon-fw", zk=secured.marathon_zk + "-fw")
    proc.start()
    try:
        secured.wait_for(
            lambda: httpx.get(url + "/v2/info").json()["frameworkId"], what="registration"
        )
        framework_id = httpx.get(url + "/v2/info").json()["frameworkId"]
        frameworks = {f["id"]: f for f in secured.state()["frameworks"]}
        assert framework_id in frameworks
        assert FRAMEWORK_SECRET not in proc.log_tail(200)
    finally:
        _stop(proc)


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
@pytest.mark.parametrize("case", ["trailing newline", "no authentication"])
def test_a_refused_framework_makes_marathon_exit(
    secured: SimCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    # MarathonSchedulerDriver reads the secret file whole (ByteString.readFrom(...)
    # .toStringUtf8: a trailing newline is part of the secret, which the master then refuses).
    # Mesos src/sched/sched.cpp _authenticate: a refused authentication is
    # error("Master refused authentication"); an unauthenticated framework is refused its
    # registration by a master with --authenticate_frameworks (src/master/master.cpp). Either
    # way MarathonScheduler.error crashes: CrashStrategy.MesosSchedulerError, exit 106.
    if case == "trailing newline":
        _framework_env(monkeypatch, _secret_file(tmp_path / "secret", FRAMEWORK_SECRET + "\n"))
    proc, _ = marathon(secured, f"marathon-refused-{case[:8]}", zk=secured.marathon_zk + "-x")
    proc.start()
    try:
        secured.wait_for(lambda: not proc.running, what="Marathon to exit")
        assert proc.returncode == 106
        log = proc.log_tail(200)
        assert "Authentication failed" in log
        assert FRAMEWORK_SECRET not in log
    finally:
        _stop(proc)


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
def test_zk_credentials_lock_marathons_znodes_to_its_user(
    secured: SimCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # ZookeeperConf: --zk zk://user:pass@hosts/path (ZkUrlPattern) authenticates with digest
    # (ZkCreds.authInfoDigest); zkDefaultCreationACL is CREATOR_ALL_ACL with credentials (not
    # Mesos' world-readable one); InfoResource shows the URL redacted (xxxxxxxx:xxxxxxxx@).
    # The URL comes from MARATHON_ZK (Main.envToArgs), so the password is not in argv.
    _framework_env(monkeypatch, _secret_file(tmp_path / "secret", FRAMEWORK_SECRET))
    path = secured.marathon_path + "-digest"
    monkeypatch.setenv("MARATHON_ZK", f"zk://marathon:{SECRET}@{secured.zk_hosts}{path}")
    proc, url = marathon(secured, "marathon-digest", zk="")
    proc.start()
    try:
        secured.wait_for(lambda: httpx.get(url + "/v2/info").json()["frameworkId"], what="lead")
        info = httpx.get(url + "/v2/info").json()
        assert info["zookeeper_config"]["zk"] == f"zk://xxxxxxxx:xxxxxxxx@{secured.zk_hosts}{path}"
        assert SECRET not in " ".join(proc.args) and SECRET not in proc.log_tail(200)
        stranger = KazooClient(hosts=secured.zk_hosts)
        stranger.start(timeout=15)
        try:
            with pytest.raises(NoAuthError):
                stranger.get_children(f"{path}/state")
        finally:
            stranger.stop()
            stranger.close()
        owner = KazooClient(hosts=secured.zk_hosts, auth_data=[("digest", f"marathon:{SECRET}")])
        owner.start(timeout=15)
        try:
            acl, _ = owner.get_acls(f"{path}/state")
            assert [(a.id.scheme, a.id.id.split(":")[0], a.perms) for a in acl] == [
                ("digest", "marathon", 31)
            ]
        finally:
            owner.stop()
            owner.close()
    finally:
        _stop(proc)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("MARATHON_SERVICE_HOST", "Unknown option 'service_host'"),
        ("MARATHON_PORT_8080_TCP", "Unknown option 'port_8080_tcp'"),
    ],
)
def test_unknown_marathon_variables_are_unknown_options(
    secured: SimCluster, monkeypatch: pytest.MonkeyPatch, variable: str, message: str
) -> None:
    # Main.envToArgs turns MARATHON_<X> into --<x> (Kubernetes service links for a Service
    # named marathon* inject such variables); AllConf.verify() (scallop) rejects an unknown
    # option: "[scallop] Error: Unknown option '<x>'", exit 1.
    monkeypatch.setenv(variable, "10.0.0.1")
    proc, _ = marathon(secured, f"marathon-{variable.lower()}")
    proc.start()
    assert proc.wait(timeout=30) == 1
    assert f"[scallop] Error: {message}" in proc.log_tail()
