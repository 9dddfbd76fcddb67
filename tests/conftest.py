"""Shared pytest configuration: the fixtures that start real services live in tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.zookeeper",
    "tests.fixtures.docker",
    "tests.fixtures.sync_controller",
]
