"""Every shell command in README.md and docs/*.md is checked, so the docs cannot drift from
the code (issue 18, point 4). `tests/e2e/test_docs_commands.py` runs the ones marked RUN
against a real control plane with the examples applied; here every other command is checked
to exist with its flags, and the reason it is not run is listed (never a silent skip).

How a command is checked depends on its program (`CHECKS`): an `orchestrator` command is
parsed by the real argument parser (subcommand, flags, choices, types); a `kubectl` or
`python -m testenv` one has each flag in its `--help`; a file, directory, make target or
npm script it names must exist. A program with no rule fails the test: add one."""

from __future__ import annotations

import functools
import itertools
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator_operator.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"sh", "bash", "shell", "console", ""}


@dataclass(frozen=True)
class Command:
    where: str  # file:line of the fence
    text: str  # one command, continuations joined, comment stripped

    @property
    def words(self) -> list[str]:
        return _words(self.text)

    @property
    def key(self) -> str:
        """The command as run: the docs' notation made concrete (see `_words`)."""
        return " ".join(self.words)


def _words(text: str) -> list[str]:
    """The command's words, with the docs' notation made concrete: `[--opt X]` becomes
    `--opt X`, `A|B|C` its first choice, leading VAR=value and sudo dropped."""
    text = text.replace("[", " ").replace("]", " ")
    words = shlex.split(text)
    words = [
        w.split("|")[0] if "|" in w and not w.startswith("|") and w != "|" else w for w in words
    ]
    while words and (re.fullmatch(r"[A-Z_]+=\S*", words[0]) or words[0] == "sudo"):
        words = words[1:]
    return words


def doc_commands() -> list[Command]:
    """The commands of every shell fence: `&&`, `;` and `|` split one line into several."""
    found: list[Command] = []
    for path in DOCS:
        text = path.read_text()
        for fence in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
            if fence.group(1) not in SHELL_FENCES:
                continue
            line = text[: fence.start()].count("\n") + 1
            where = f"{path.relative_to(REPO)}:{line}"
            body = fence.group(2).replace("\\\n", " ")
            for raw in body.splitlines():
                command = re.sub(r"(^|\s)#.*$", "", raw).strip()
                if not command:
                    continue
                for part in _split(command):
                    found.append(Command(where, " ".join(part.split())))
    return found


def _split(line: str) -> list[str]:
    """A line's commands: split at `&&`, `;`, ` | ` and a subshell's parentheses, but not
    inside quotes or `$(...)` (a docs choice `A|B` has no spaces around its bar)."""
    parts: list[str] = []
    current = ""
    quote = ""
    depth = 0
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif line.startswith("$(", index):
            depth += 1
            current += "$("
            index += 2
            continue
        elif char == ")" and depth:
            depth -= 1
        elif not depth and (line.startswith("&&", index) or line.startswith(" | ", index)):
            parts.append(current)
            current = ""
            index += 2 if line.startswith("&&", index) else 3
            continue
        elif not depth and char in ";()":
            parts.append(current)
            current = ""
            index += 1
            continue
        current += char
        index += 1
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


# ------------------------------------------------------------------ executed (e2e)

# Run in this order against testenv, the shared operator and the examples (docs' flow):
# command -> the exit codes it may end with (what the docs say it returns there).
RUN: dict[str, set[int]] = {
    "kubectl apply -f examples/mesoscluster.yaml": {0},
    "kubectl apply -f examples/zkmigration.yaml": {0},
    "kubectl get mesoscluster demo": {0},
    # the docs' plan of a migration, after the example made one of that name (issue 18)
    "orchestrator zk-migrate start demo-to-zk-b -n default --cluster demo"
    " --target-managed-replicas 3 --manual --dry-run": {0},
    "orchestrator zk-migrate status demo-to-zk-b": {0},
    "orchestrator zk-migrate status demo-to-zk-b --json": {0},
    # the example approves phase 1 and runs it: approving the current phase changes nothing
    "orchestrator zk-migrate advance demo-to-zk-b": {1},
    ".venv/bin/orchestrator zk-migrate advance demo-to-zk-b --through 6": {0},
    "orchestrator zk-migrate advance demo-to-zk-b --through 6": {1},  # the same again
    "orchestrator zk-migrate validate demo-to-zk-b": {0, 1},  # 1 while a check holds
    "orchestrator zk-migrate report demo-to-zk-b --json": {1},  # not finished here
    "orchestrator zk-migrate rollback demo-to-zk-b --to 0": {0, 2},  # 2 if no phase started
    "orchestrator zk-migrate rollback demo-to-zk-b --cancel": {0},
    "orchestrator render -f examples/mesoscluster.yaml": {0},
    "orchestrator render -f examples/mesoscluster.yaml -f examples/zkmigration.yaml": {0},
    "orchestrator render -f -": {0},  # stdin: examples/probefleet.yaml (the docs' `cat`)
    "cat examples/probefleet.yaml": {0},
    # docs/marathonapp.md: the example app, listed, scaled (the scale subresource), described
    "kubectl apply -f examples/marathonapp.yaml": {0},
    "kubectl get mapp -A": {0},
    "kubectl scale mapp/web --replicas 5": {0},
    "kubectl describe mapp web": {0},
}

# ------------------------------------------------------------------ checked, not run

# Why a command is not run here; each still gets its program's check below.
NOT_RUN: list[tuple[str, str]] = [
    (r"^make (run|test)$",
     "starts the whole platform or suite; tests/e2e/test_make_run.py runs make run"),
    (r"^\.venv/bin/python -m testenv (up|measure)",
     "long-running control plane (tests start their own)"),
    (r"^\.venv/bin/python -m pytest|^\.venv/bin/pytest", "the test suite itself"),
    (r"^make (load|chaos|soak)\b",
     "minutes of load or faults (make load, make chaos; CI runs the chaos subset itself)"),
    (r"^\.venv/bin/python -m tests\.load\.", "the load runner (make load runs it)"),
    (r"^kubectl -n argocd ", "changes ArgoCD's own Secret in a real cluster"),
    (r"^kubectl auth can-i",
     "asks a real cluster; tests/integration/test_rbac_pins.py asks testenv"),
    (r"^kubectl apply --server-side -k (k8s|deploy)/",
     "installs the operator's image into a real cluster (checked: the kustomization builds)"),
    (r"^kubectl -n orchestrator-system rollout", "needs the operator installed in a real cluster"),
    (r"^kubectl (create|label) namespace", "changes a real cluster's namespaces (install steps)"),
    (r"^kubectl -n orchestrator-system create secret", "a secret for an installed operator"),
    (r"^kubectl (create|label) secret .* -n prod",
     "a secret in a user's namespace (credentials how-to)"),
    (r"^helm ", "a Helm install into a real cluster (tests/e2e/test_helm_install.py)"),
    (r"^bash scripts/|^scripts/|^sudo scripts/", "builds a tool or an image (minutes, network)"),
    (r"^docker |^[A-Z_]+=\S* docker ", "needs a Docker daemon and builds images (minutes)"),
    (r"^\.venv/bin/pip wheel", "builds wheels (network)"),
    (r"^cd ui$|^npm ", "needs ui/node_modules (make ui-deps); the UI tests run these"),
    (r"^head -c 32 /dev/urandom", "part of a secret's value"),
    (r"zk-migrate start demo-to-zk-b --cluster demo --target-connect", "creates a migration of the"
     " example's name, which exists; creating is tested in tests/e2e/test_zk_migrate_cli.py"),
    (r"zk-migrate status demo-to-zk-b --watch", "watches until the migration ends; a real cluster's"
     " migration ends, here it holds (tests/e2e/test_zk_migrate_cli.py watches one end)"),
    (r"zk-migrate restore", "needs phase 6's archive of a finished migration"
     " (tests/e2e/test_zk_migrate_cli.py restores one)"),
    (r"^orchestrator zk-sync",
     "needs two ZooKeeper ensembles (tests/integration/test_zk_sync*.py)"),
    (r"^orchestrator marathon (import|plan) .*--cluster prod -n shop",
     "reads a user's live Marathon (the off-ramp's integration tests run both against the"
     " simulated one)"),
    (r"^kubectl .*(-n shop\b|examples/marathonapp-offramp\.yaml)",
     "the off-ramp of a user's app in a real cluster (namespace shop, cluster prod);"
     " tests/integration/test_offramp_traffic.py drives the same shift"),
]  # fmt: skip


def not_run_reason(command: str) -> str | None:
    for pattern, reason in NOT_RUN:
        if re.search(pattern, command):
            return reason
    return None


# ------------------------------------------------------------------ checks by program


def _orchestrator(words: list[str]) -> None:
    """Parsed by the real parser: subcommands, flags, choices and types exist."""
    try:
        build_parser().parse_args(words[1:])
    except SystemExit as exit:
        raise AssertionError(f"`{shlex.join(words)}` does not parse (exit {exit.code})") from None


def _help_has_flags(program: list[str], words: list[str]) -> None:
    """`<program> <subcommands> --help` works and names every long flag used."""
    subcommands = []
    for word in words:
        if word.startswith("-"):
            break
        subcommands.append(word)
    result = subprocess.run(
        [*program, *subcommands, "--help"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, f"{shlex.join(words)}: --help failed: {result.stderr[-500:]}"
    for word in words:
        if word.startswith("--"):
            flag = word.split("=")[0]
            assert flag in result.stdout, f"{shlex.join(words)}: {flag} is not in its --help"


@functools.cache
def _kubectl_binary() -> str:
    from testenv.kube import build_binaries  # cached by testenv/build.sh after the first

    return str(build_binaries() / "kubectl")


def _kubectl(words: list[str]) -> None:
    args = words[1:]
    if args[:1] == ["-n"]:
        args = args[2:]
    kubectl = _kubectl_binary()
    _help_has_flags([kubectl], args)
    for flag, value in itertools.pairwise(args):
        if flag in ("-f", "-k") and value != "-":
            assert (REPO / value).exists(), f"{shlex.join(words)}: {value} does not exist"
        if flag == "-k":  # the kustomization builds
            built = subprocess.run(
                [kubectl, "kustomize", value], capture_output=True, text=True, cwd=REPO, timeout=60
            )
            assert built.returncode == 0, f"{shlex.join(words)}: {built.stderr[-500:]}"


def _python(words: list[str]) -> None:
    if words[1:3] == ["-m", "testenv"]:
        _help_has_flags([sys.executable, "-m", "testenv"], words[3:])
    elif words[1:3] == ["-m", "pytest"] or words[0].endswith("/pytest"):
        for word in words[3 if words[1:3] == ["-m", "pytest"] else 1 :]:
            if not word.startswith("-"):
                assert (REPO / word).exists(), f"{shlex.join(words)}: {word} does not exist"
    elif len(words) > 2 and words[1] == "-m":
        _help_has_flags([sys.executable, "-m", words[2]], words[3:])
    else:
        raise AssertionError(f"no check for `{shlex.join(words)}`: add one")


def _make(words: list[str]) -> None:
    targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
    for target in (word for word in words[1:] if "=" not in word):  # VAR=value: a variable
        assert target in targets, f"`{shlex.join(words)}`: no target {target} in the Makefile"


def _path_exists(index: int) -> Callable[[list[str]], None]:
    def check(words: list[str]) -> None:
        path = words[index]
        assert (REPO / path).exists(), f"`{shlex.join(words)}`: {path} does not exist"

    return check


def _npm(words: list[str]) -> None:
    import json

    if words[1] == "run":
        scripts = json.loads((REPO / "ui" / "package.json").read_text())["scripts"]
        assert words[2] in scripts, (
            f"`{shlex.join(words)}`: no script {words[2]} in ui/package.json"
        )
    else:
        assert words[1] in ("ci", "test", "install"), f"`{shlex.join(words)}`: unknown npm command"


def _docker(words: list[str]) -> None:
    if words[1] == "compose":
        compose = (REPO / "docker-compose.yml").read_text()
        for flag, value in itertools.pairwise(words):
            if flag == "--profile":
                assert (
                    f"- {value}" in compose or f"[{value}" in compose or f" {value}]" in compose
                ), f"`{shlex.join(words)}`: no profile {value} in docker-compose.yml"
    else:
        assert (REPO / "Dockerfile").exists()


def _helm(words: list[str]) -> None:
    charts = [w for w in words if w.startswith("charts/")]
    for chart in charts:
        assert (REPO / chart / "Chart.yaml").exists(), f"`{shlex.join(words)}`: no chart {chart}"


def _venv_tool(words: list[str]) -> None:
    tool = words[0].removeprefix(".venv/bin/")
    if tool == "orchestrator":
        _orchestrator(["orchestrator", *words[1:]])
    elif tool in ("python", "pytest"):
        _python(words)
    elif tool == "pip":
        assert words[1] == "wheel"
    else:
        raise AssertionError(f"no check for `{shlex.join(words)}`: add one")


def _accept(words: list[str]) -> None:
    """Shell built-ins and coreutils used as glue (cat, head): nothing of ours to check."""


CHECKS: dict[str, Callable[[list[str]], None]] = {
    "orchestrator": _orchestrator,
    "kubectl": _kubectl,
    "make": _make,
    "npm": _npm,
    "docker": _docker,
    "helm": _helm,
    "cd": _path_exists(1),
    "bash": _path_exists(1),
    "cat": _path_exists(1),
    "head": _accept,
}


def check_command(command: Command) -> None:
    words = command.words
    program = words[0]
    if program.startswith(".venv/bin/"):
        _venv_tool(words)
    elif program.startswith("scripts/"):
        _path_exists(0)(words)
    elif program in CHECKS:
        CHECKS[program](words)
    else:
        raise AssertionError(f"{command.where}: no check for program {program!r}: add one")


# ------------------------------------------------------------------ tests

COMMANDS = doc_commands()


def test_the_docs_have_commands_and_the_zk_migrate_flow_is_among_them() -> None:
    texts = {c.text for c in COMMANDS}
    assert len(COMMANDS) > 40
    assert "orchestrator zk-migrate status demo-to-zk-b" in texts


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.where} {c.text[:60]}" for c in COMMANDS])
def test_every_docs_command_exists_with_its_flags(command: Command) -> None:
    check_command(command)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.where} {c.text[:60]}" for c in COMMANDS])
def test_every_docs_command_is_run_or_has_a_reason_not_to_be(command: Command) -> None:
    assert command.key in RUN or not_run_reason(command.key), (
        f"{command.where}: `{command.text}` is neither run by tests/e2e/test_docs_commands.py"
        " (RUN) nor given a reason not to be (NOT_RUN) in tests/unit/test_docs_commands.py"
    )


def test_the_run_list_names_only_commands_of_the_docs() -> None:
    keys = {c.key for c in COMMANDS}
    assert [command for command in RUN if command not in keys] == []
