from __future__ import annotations

from orchestrator_operator.zk.four_letter import connect_string_hosts, ensemble_modes


def test_connect_string_hosts_drop_the_chroot() -> None:
    assert connect_string_hosts("a:2181,b.example:2182/mesos/x") == [
        ("a", 2181),
        ("b.example", 2182),
    ]


def test_a_server_that_does_not_answer_has_no_mode() -> None:
    assert ensemble_modes("127.0.0.1:1", timeout=0.2) == [("127.0.0.1:1", None)]
