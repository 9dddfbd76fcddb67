"""Conformance: ZooKeeper credentials and agent/framework authentication of the master.

Each test names the Mesos 1.11 source or doc it follows.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl_credential

from sim.cluster import SimCluster
from sim.procs import REPO_ROOT, free_ports
from sim.zkurl import ZkUrl
from testenv.zookeeper import ZkEnsemble

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]

SECRET = "s3cr3t-pw"


# --- zk URL parsing: include/mesos/zookeeper/url.hpp (URL::parse), stout flags/fetch.hpp


def test_zk_url_credentials_are_digest_auth_and_never_printed() -> None:
    # url.hpp: the URL is trimmed; credentials are what precedes the last '@' of the servers.
    url = ZkUrl.parse(f"  zk://alice:{SECRET}@z1:2181,z2:2181/ns/mesos/\n")
    assert (url.hosts, url.path, url.credentials) == (
        "z1:2181,z2:2181",
        "/ns/mesos",
        f"alice:{SECRET}",
    )
    assert SECRET not in str(url) and SECRET not in repr(url)
    assert str(url) == "zk://alice:********@z1:2181,z2:2181/ns/mesos"
    assert url.with_secret() == f"zk://alice:{SECRET}@z1:2181,z2:2181/ns/mesos"


@pytest.mark.parametrize("bad", ["zk://alice@z:1/mesos", "zk://:pw@z:1/mesos", "zk://z:1//mesos"])
def test_zk_url_refuses_what_zookeeper_refuses(bad: str) -> None:
    # digest auth needs user:password; ZooKeeper refuses a path with an empty element.
    with pytest.raises(ValueError) as caught:
        ZkUrl.parse(bad)
    assert "pw" not in str(caught.value)


def test_zk_flag_is_read_from_a_file(tmp_path: Path) -> None:
    # stout/flags/fetch.hpp: a flag value `file:///path` is the content of that file.
    url_file = tmp_path / "zk"
    url_file.write_text(f"zk://alice:{SECRET}@z1:2181/mesos\n")
    assert ZkUrl.flag(f"file://{url_file}").credentials == f"alice:{SECRET}"
    with pytest.raises(ValueError, match="Error reading file"):
        ZkUrl.flag(f"file://{tmp_path / 'missing'}")


# --- a cluster whose ZooKeeper URL carries credentials


@pytest.fixture
def secured(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"credentials": [{"principal": "agent", "secret": SECRET}]}))
    creds.chmod(0o600)
    with SimCluster(
        zk_ensemble.connect_string,
        masters=1,
        agents=0,
        marathons=0,
        base_dir=tmp_path / "sim",
        zk_credentials=f"mesos:{SECRET}",
        master_flags=[
            "--authenticate_agents",
            "--authenticate_frameworks=true",
            f"--credentials={creds}",
        ],
    ) as sim:
        yield sim


def _register_agent(sim: SimCluster, header: str | None) -> httpx.Response:
    body = {"hostname": "h", "ip": "127.0.0.1", "port": 1, "resources": {"cpus": 1.0}}
    headers = {"Authorization": header} if header else {}
    return httpx.post(sim.leader_url() + "/sim/v1/agents/register", json=body, headers=headers)


def _basic(principal: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()


def test_znodes_carry_mesos_acl_and_the_password_shows_nowhere(
    secured: SimCluster, zk_ensemble: ZkEnsemble
) -> None:
    # src/zookeeper/group.cpp: with credentials, znodes get EVERYONE_READ_CREATOR_ALL
    # (src/zookeeper/authentication.cpp): anyone reads, only the digest user writes.
    path = secured.mesos_path
    contender = next(c for c in secured.zk.get_children(path) if c.startswith("json.info_"))
    acls, _ = secured.zk.get_acls(f"{path}/{contender}")
    digest = make_digest_acl_credential("mesos", SECRET)
    assert {(a.id.scheme, a.id.id, a.perms) for a in acls} == {
        ("digest", digest, 31),
        ("world", "anyone", 1),
    }
    stranger = KazooClient(hosts=zk_ensemble.connect_string)
    stranger.start(timeout=30)
    try:
        assert json.loads(stranger.get(f"{path}/{contender}")[0])["pid"].startswith("master@")
        with pytest.raises(NoAuthError):
            stranger.set(f"{path}/{contender}", b"x")
    finally:
        stranger.stop()
        stranger.close()
    # Our own output never shows the password: not argv, not the log, not state flags.
    # (Real Mesos 1.11 prints the zk flag verbatim in /master/flags and state `flags`.)
    state = secured.state()
    assert state["flags"]["zk"] == f"zk://mesos:********@{secured.zk_hosts}{path}"
    assert SECRET not in json.dumps(state)
    assert all(SECRET not in arg for arg in secured.masters[0].args)
    assert SECRET not in secured.masters[0].log_tail()


def test_master_refuses_unauthenticated_agents_and_frameworks(secured: SimCluster) -> None:
    # src/master/flags.cpp --authenticate_agents/--authenticate_frameworks; docs/
    # authentication.md: only authenticated agents and frameworks may register.
    assert _register_agent(secured, None).status_code == 401
    wrong = _register_agent(secured, _basic("agent", "nope"))
    assert wrong.status_code == 401 and "Authentication failed" in wrong.json()["message"]
    assert _register_agent(secured, _basic("intruder", SECRET)).status_code == 401
    assert _register_agent(secured, _basic("agent", SECRET)).status_code == 200
    fw = secured.leader_url() + "/sim/v1/frameworks/register"
    body = {"framework_info": {"name": "marathon"}}
    assert httpx.post(fw, json=body).status_code == 401
    ok = httpx.post(fw, json=body, headers={"Authorization": _basic("agent", SECRET)})
    assert ok.status_code == 200
    assert SECRET not in secured.masters[0].log_tail()


def test_a_failed_authentication_is_refused_even_when_not_required(
    zk_ensemble: ZkEnsemble, tmp_path: Path
) -> None:
    # src/authentication/cram_md5/authenticator.cpp: without --credentials every attempt
    # to authenticate is refused; an agent that tries never registers unauthenticated.
    with SimCluster(
        zk_ensemble.connect_string, masters=1, agents=0, marathons=0, base_dir=tmp_path
    ) as sim:
        assert _register_agent(sim, None).status_code == 200
        assert _register_agent(sim, _basic("agent", SECRET)).status_code == 401


def _master_exit(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "sim", "master", "--zk=zk://127.0.0.1:1/mesos", f"--port={port}"]
    return subprocess.run(
        [*argv, *flags], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"agent {SECRET}\n", "Invalid json format"),  # 1.11 reads JSON only
        ('{"credentials": []}', "at least one credential"),
        ("", "at least one credential"),
    ],
)
def test_master_exits_on_unusable_credentials(tmp_path: Path, content: str, message: str) -> None:
    # src/master/master.cpp Master::initialize + src/credentials/credentials.hpp read():
    # EXIT(EXIT_FAILURE) "... (see --credentials flag)".
    creds = tmp_path / "credentials"
    creds.write_text(content)
    done = _master_exit(tmp_path, f"--credentials={creds}", "--authenticate_agents")
    assert done.returncode == 1
    assert message in done.stderr and "--credentials" in done.stderr
    assert SECRET not in done.stderr


def test_master_exits_on_unreadable_zk_file(tmp_path: Path) -> None:
    # stout/flags/fetch.hpp: "Error reading file '<path>'" and the flag fails to load.
    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "sim", "master", f"--zk=file://{tmp_path}/nope", f"--port={port}"]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Error reading file" in done.stderr
