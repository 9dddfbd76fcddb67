"""Which copied names push the other side's sequence counter: only real sequence suffixes."""

from __future__ import annotations

from orchestrator_operator.zk.writer import SEQUENCE_SUFFIX, Applier


def _applier(ceiling: int | None) -> Applier:
    applier = Applier(None)
    applier.sequence_ceiling = lambda parent: ceiling
    return applier


def test_mesos_and_curator_names_are_sequences() -> None:
    assert SEQUENCE_SUFFIX.search("json.info_0000000003")
    assert SEQUENCE_SUFFIX.search("_c_4bfd778d-be0a-46a5-a034-75666c11e258-latch-0000000000")
    assert _applier(4)._could_be_sequence("/mesos/json.info_0000000003", 3)


def test_a_uuid_ending_in_digits_is_not_a_sequence() -> None:
    # Marathon instance ids end in a UUID; this one's last group is 12 digits after a letter.
    name = "web.marathon-f2dd1667-c844-430a-8236-c15297207084"
    assert SEQUENCE_SUFFIX.search(name) is None
    # Ten digits after a letter do match the pattern; the parent's cversion rules them out.
    applier = _applier(240)
    assert not applier._could_be_sequence("/marathon/state/instance/a/x-a5297207084", 5297207084)
    assert not _applier(None)._could_be_sequence("/p/x-a5297207084", 5297207084)
    assert _applier(None)._could_be_sequence("/p/json.info_0000000012", 12)
