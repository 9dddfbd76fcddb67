"""common/tls.py's refusals (issue 17, point 7): TLS files that are missing or do not match
give one clear line naming the file, at start-up; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator_operator.common.tls import ReloadingTls, TlsError, TlsFiles
from testenv.tls_secret import TlsCa, tls_secret, write_secret_volume


def test_a_directory_without_a_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"tls\.crt is missing"):
        TlsFiles.from_directory(tmp_path)
    ca = TlsCa("ca")
    files = tls_secret(ca, ca.issue("app", hosts=("127.0.0.1",)))
    del files["tls.key"]
    write_secret_volume(tmp_path, files)
    with pytest.raises(TlsError, match=r"tls\.key is missing"):
        TlsFiles.from_directory(tmp_path)


def test_a_key_that_does_not_match_its_certificate_is_refused(tmp_path: Path) -> None:
    ca = TlsCa("ca")
    files = tls_secret(ca, ca.issue("app", hosts=("127.0.0.1",)))
    files["tls.key"] = ca.issue("other", hosts=("127.0.0.1",)).key_pem
    write_secret_volume(tmp_path, files)
    with pytest.raises(TlsError, match="cannot load"):
        ReloadingTls(TlsFiles.from_directory(tmp_path), "server")


def test_client_certificates_need_a_ca(tmp_path: Path) -> None:
    ca = TlsCa("ca")
    files = tls_secret(ca, ca.issue("app", hosts=("127.0.0.1",)))
    del files["ca.crt"]
    write_secret_volume(tmp_path, files)
    with pytest.raises(TlsError, match=r"need ca\.crt"):
        ReloadingTls(TlsFiles.from_directory(tmp_path), "server", "required")


def test_the_app_says_what_is_wrong_and_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "app", "--token", "t",
         "--tls-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "tls.crt is missing" in result.stderr
    assert "Traceback" not in result.stderr
