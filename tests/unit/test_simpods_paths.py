"""testenv/simpods.py moves a pod's mounted paths to where it keeps the volumes, as the
kubelet mounts them, and runs a pod's shell start command."""

from __future__ import annotations

from pathlib import Path

from testenv.simpods import remap, remap_args, shell_wrapper

MOUNTS = {
    "/etc/orchestrator/mesos-credentials": Path("/tmp/p/volumes/credentials"),
    "/run/orchestrator/zk": Path("/tmp/p/volumes/zk-url"),
    "/run/orchestrator": Path("/tmp/p/volumes/run"),
}


def test_paths_under_a_mount_move_and_others_stay() -> None:
    assert remap("/run/orchestrator/zk/mesos", MOUNTS) == "/tmp/p/volumes/zk-url/mesos"
    assert remap("/run/orchestrator/other", MOUNTS) == "/tmp/p/volumes/run/other"
    assert remap("file:///run/orchestrator/zk/mesos", MOUNTS) == (
        "file:///tmp/p/volumes/zk-url/mesos"
    )
    assert remap("/run/orchestratorx/zk", MOUNTS) == "/run/orchestratorx/zk"
    assert remap("zk://h:2181/mesos", MOUNTS) == "zk://h:2181/mesos"


def test_flag_values_and_separate_values_move() -> None:
    args = [
        "--credentials=/etc/orchestrator/mesos-credentials/credentials",
        "--mesos_authentication_secret_file",
        "/run/orchestrator/zk/secret",
        "--quorum=2",
    ]
    assert remap_args(args, MOUNTS) == [
        "--credentials=/tmp/p/volumes/credentials/credentials",
        "--mesos_authentication_secret_file",
        "/tmp/p/volumes/zk-url/secret",
        "--quorum=2",
    ]


def test_only_shell_scripts_are_wrappers() -> None:
    assert shell_wrapper(["/bin/sh", "-c", 'exec "$0"', "/marathon/bin/marathon"]) == [
        "/bin/sh",
        "-c",
        'exec "$0"',
    ]
    assert shell_wrapper(["mesos-master"]) == []
    assert shell_wrapper(["/bin/sh", "script.sh"]) == []
