"""Conformance: where Marathon 1.11 keeps its state in ZooKeeper.

Each test names the Marathon 1.11 source it follows.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sim.cluster import SimCluster
from sim.marathon import layout
from testenv.zookeeper import ZkEnsemble

# `String.hashCode` values printed by a JVM (OpenJDK, `"...".hashCode()`), and the bucket
# `math.abs(h % 16)` formatted `%x` of each.
JAVA_HASHES = [
    ("id", 3355, "b"),
    ("root", 3506402, "2"),
    ("prod_api", -1004418766, "e"),
    ("svc", 114272, "0"),
    ("Hello World", -862545276, "c"),
    ("web", 117588, "4"),
    ("a_b_c", 92508904, "8"),
    ("déjà", 3206523, "b"),
    ("\U0001f600app", 1276923358, "e"),  # a surrogate pair: two UTF-16 code units
]


@pytest.mark.parametrize(("key", "java_hash", "bucket"), JAVA_HASHES)
def test_buckets_are_javas_string_hashcode_modulo_16(key: str, java_hash: int, bucket: str) -> None:
    # core/storage/store/impl/zk/ZkPersistenceStore.scala, `ZkId`:
    #   bucket = math.abs(id.hashCode % ZkId.HashBucketSize)  (HashBucketSize = 16)
    #   path   = f"/$category/$bucket%x/$id"
    # A store written by the sim must be readable by a real Marathon at the same paths
    # (zk-migrate copies it; a real Marathon reads it after a migration).
    assert layout.java_string_hash(key) == java_hash
    assert layout.bucket(key) == bucket


def test_app_ids_are_stored_by_their_path_segments_joined_with_underscores() -> None:
    # storage/store/ZkStoreSerialization.scala, `ZkPathIdResolver.toStorageId`:
    #   ZkId(category, id.path.mkString("_"), version)
    assert layout.safe_id("/prod/api") == "prod_api"
    assert layout.bucket(layout.safe_id("/prod/api")) == "e"


@pytest.mark.zookeeper
@pytest.mark.timeout(180)
def test_a_running_marathon_writes_at_marathons_paths(
    _zk_ensemble_module: ZkEnsemble, tmp_path: Path
) -> None:
    # ZkStoreSerialization: framework-id under key "id", apps by their "_"-joined path, the
    # root group as "root"; ZkPersistenceStore/ZkId: /<category>/<bucket %x>/<id> under
    # <--zk path>/state (ZookeeperConf.zooKeeperStateUrl); the framework id is the serialized
    # FrameworkID protobuf (storage/repository FrameworkIdRepository, util/state/FrameworkId).
    with SimCluster(
        _zk_ensemble_module.connect_string, masters=1, agents=1, marathons=1, base_dir=tmp_path
    ) as sim:
        app = {"id": "/prod/api", "instances": 1, "cpus": 0.1, "mem": 32, "cmd": "sleep 1000"}
        assert httpx.post(sim.marathon_url() + "/v2/apps", json=app, timeout=10).status_code == 201
        state = f"{sim.marathon_path}/state"
        raw, _ = sim.zk.get(f"{state}/framework-id/b/id")
        assert layout.decode_framework_id(bytes(raw)) == sim.framework_id()
        assert sim.zk.exists(f"{state}/apps/e/prod_api") is not None
        assert sim.zk.exists(f"{state}/group/2/root") is not None
