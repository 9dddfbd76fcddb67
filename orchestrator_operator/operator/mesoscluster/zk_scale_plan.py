"""Pure: the next step of scaling a managed ZooKeeper ensemble with dynamic reconfiguration.

ZooKeeper members are voters: the StatefulSet's replica count and the ensemble's dynamic
configuration (`/zookeeper/config`) are two separate facts, and they must only ever move
together, one member at a time, in this order (as the most careful operators do it):

- scale up (3 -> 5): add one pod (StatefulSet replicas + 1), wait until it answers and has
  synced with the leader (as a non-voting follower or an observer: its own starting config
  is the current ensemble plus itself), then `reconfig` it in; then the next one.
- scale down (5 -> 3): `reconfig` the highest id out first, then remove its pod (StatefulSet
  replicas - 1); then the next one. The leader is never removed before the followers that
  also leave: ZooKeeper cannot be told to move leadership, so followers go first and the
  leader last, and the ensemble hands leadership to a remaining member when it leaves.

Server ids map to pod ordinals: id = ordinal + 1 (builders.zookeeper.server_lines).

The plan is recomputed from what is observed on every reconcile, so a change left half
done (an operator restart between the reconfig and the scale, a human scaling the
StatefulSet) is repaired from wherever it stands:

- a pod beyond the wanted size that is not a voter (added but never reconfigured in, or
  already reconfigured out) is removed: StatefulSet replicas - 1;
- a voter whose pod is gone (the StatefulSet was scaled below it) is brought back when the
  spec still wants it (StatefulSet replicas up: its volume was retained), else reconfigured
  out;
- a wanted pod that is running but not a voter is reconfigured in.

Safety: no reconfig and no StatefulSet change while fewer than a majority of the current
voters are ready, and a reconfig only when a majority of the *new* configuration is ready
too (ZooKeeper needs acknowledgements from both). The one exception is scaling the
StatefulSet back up to return pods of members that are still in the configuration: that
only gives back voters the ensemble already counts on, and it may be what restores the
majority.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

SYNCED_MODES = frozenset({"leader", "follower", "observer"})
VOTER_MODES = frozenset({"leader", "follower"})


@dataclass(frozen=True)
class ConfigMember:
    """One `server.N=host:peer:election[:role];[clientHost:]clientPort` line."""

    id: int
    line: str  # the whole line, `server.N=...`
    role: str  # participant or observer


@dataclass(frozen=True)
class EnsembleConfig:
    """The dynamic configuration as `/zookeeper/config` (or the `config` word) gives it."""

    members: tuple[ConfigMember, ...]
    version: int | None  # the `version=` line (hex), None when absent

    @property
    def voters(self) -> frozenset[int]:
        return frozenset(m.id for m in self.members if m.role == "participant")


def parse_config(text: str) -> EnsembleConfig:
    """Parse the dynamic configuration text; unknown lines are ignored."""
    members: list[ConfigMember] = []
    version: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "version":
            version = int(value, 16)
        elif key.startswith("server.") and key[len("server.") :].isdigit():
            address = value.split(";", 1)[0].split(":")
            role = address[3] if len(address) > 3 and address[3] else "participant"
            members.append(ConfigMember(int(key[len("server.") :]), line, role))
    return EnsembleConfig(tuple(sorted(members, key=lambda m: m.id)), version)


@dataclass(frozen=True)
class PodState:
    """A pod of the StatefulSet as the runner saw it.

    `ready`: the pod exists, is not being deleted and its Ready condition is True.
    `mode`: what the server says of itself through `srvr` (leader, follower, observer),
    None when it does not answer or is still looking for a leader.
    """

    ordinal: int
    ready: bool
    mode: str | None

    @property
    def server_id(self) -> int:
        return self.ordinal + 1

    @property
    def synced(self) -> bool:
        return self.ready and self.mode in SYNCED_MODES


@dataclass(frozen=True)
class ScaleStatefulSet:
    replicas: int
    reason: str


@dataclass(frozen=True)
class Reconfig:
    joining: tuple[str, ...]  # server lines, `server.N=...`
    leaving: tuple[int, ...]  # server ids
    reason: str


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class Done:
    pass


Action = ScaleStatefulSet | Reconfig | Wait | Done


def majority(voters: int) -> int:
    return voters // 2 + 1


def next_scale_action(
    desired: int,
    statefulset_replicas: int,
    config: EnsembleConfig,
    pods: Mapping[int, PodState],
    server_line: Callable[[int], str],
) -> Action:
    """The one next action that brings the ensemble towards `desired` voters.

    `pods` maps ordinal -> state for the pods that should exist (ordinals below
    `statefulset_replicas`); a missing ordinal is a pod that does not exist (yet).
    `server_line(id)` is the `server.N=...` line a joining member is added with.
    """
    voters = config.voters
    if not voters:
        return Wait("the ensemble's configuration lists no voting member")
    wanted = frozenset(range(1, desired + 1))
    in_set = statefulset_replicas  # ids 1..in_set have a pod (wanted to)

    def voter_ready(server_id: int) -> bool:
        pod = pods.get(server_id - 1)
        return server_id <= in_set and pod is not None and pod.ready and pod.mode in VOTER_MODES

    def ready_count(ids: frozenset[int]) -> int:
        return sum(1 for i in ids if voter_ready(i))

    # Voters whose pod the StatefulSet no longer has and that the spec still wants: give
    # them back first, even without a majority (they are the ensemble's own members).
    missing_wanted = sorted(i for i in voters if i > in_set and i in wanted)
    if missing_wanted:
        return ScaleStatefulSet(
            max(missing_wanted),
            f"server {max(missing_wanted)} is a voter without its pod: restoring it",
        )

    ready = ready_count(voters)
    if voters and ready < majority(len(voters)):
        return Wait(
            f"only {ready} of {len(voters)} voting members are ready; a majority "
            f"({majority(len(voters))}) is needed before changing the ensemble"
        )

    # A pod beyond the wanted size that is not a voter: remove it (highest ordinal).
    if in_set > desired and in_set not in voters:
        return ScaleStatefulSet(
            in_set - 1, f"server {in_set} is not a voter and not wanted: removing its pod"
        )

    # Voters the spec no longer wants: reconfigure one out, followers before the leader,
    # highest id first.
    leaving = [i for i in voters if i not in wanted]
    if leaving:
        leader = next((p.server_id for p in pods.values() if p.mode == "leader"), None)
        target = sorted(leaving, key=lambda i: (i == leader, -i))[0]
        remaining = voters - {target}
        if ready_count(remaining) < majority(len(remaining)):
            return Wait(
                f"removing server {target} needs a majority of the remaining "
                f"{len(remaining)} voters ready, only {ready_count(remaining)} are"
            )
        role = "the leader" if target == leader else "a follower"
        return Reconfig((), (target,), f"reconfiguring server {target} ({role}) out")

    # Wanted members that are not voters yet: the lowest id first, pod first.
    joining = sorted(wanted - voters)
    if joining:
        target = joining[0]
        if in_set < target:
            return ScaleStatefulSet(
                in_set + 1, f"adding the pod of server {in_set + 1} before reconfiguring it in"
            )
        pod = pods.get(target - 1)
        if pod is None or not pod.synced:
            state = "missing" if pod is None else ("not ready" if not pod.ready else pod.mode)
            return Wait(
                f"server {target} (pod ordinal {target - 1}) has not synced with the leader "
                f"yet ({state or 'looking'}); it is reconfigured in once it has"
            )
        after = voters | {target}
        ready_after = ready_count(voters) + 1
        if ready_after < majority(len(after)):
            return Wait(
                f"adding server {target} needs a majority of {len(after)} voters ready, "
                f"only {ready_after} would be"
            )
        return Reconfig((server_line(target),), (), f"reconfiguring server {target} in")

    # Here the voters are exactly 1..desired and each has its pod (a voter above the
    # StatefulSet's size was restored above, a pod above `desired` is not a voter).
    return Done()
