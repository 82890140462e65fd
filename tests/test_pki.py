"""The platform's own CA: generated once, shared by processes, and real TLS
handshakes with what it issues (a client of another CA is refused)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509

from oktoscripts import pki
from oktoscripts.config import BASE_DIR


@pytest.fixture
def pki_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OKTOSCRIPTS_DATA_DIR", str(tmp_path))
    for name in ("OKTOSCRIPTS_TLS_CERT", "OKTOSCRIPTS_TLS_KEY", "OKTOSCRIPTS_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "pki"


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str = "localhost"):
    """One TLS handshake over a real socket pair; (server result, client error or None).
    The server's result is the Endpoint IDs of the client certificate, or the error."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: dict = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                outcome["ids"] = pki.peer_usp_endpoint_ids(tls)
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    client_error = None
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with client.wrap_socket(raw, server_hostname=hostname) as tls:
                tls.recv(2)
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    thread.join(5)
    listener.close()
    return outcome.get("ids", outcome.get("error")), client_error


def test_generated_once_and_reused(pki_env: Path) -> None:
    first = pki.tls_files()
    ca = first.ca.read_bytes()
    server = first.cert.read_bytes()
    again = pki.tls_files()
    assert again == first
    assert first.ca.read_bytes() == ca and again.cert.read_bytes() == server
    assert (pki_env / "ca.key").stat().st_mode & 0o077 == 0
    assert first.key.stat().st_mode & 0o077 == 0


def test_processes_starting_together_share_one_ca(pki_env: Path) -> None:
    code = "from oktoscripts import pki; print(pki.tls_files().ca.read_text().splitlines()[1])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    lines = {p.communicate(timeout=60)[0] for p in procs}
    assert len(lines) == 1


def test_server_certificate_reissued_for_a_new_hostname(pki_env: Path, monkeypatch) -> None:
    files = pki.tls_files()
    before = files.cert.read_bytes()
    monkeypatch.setenv("OKTOSCRIPTS_TLS_HOSTNAMES", "acs.example.net,10.1.2.3")
    after = pki.tls_files()
    assert after.cert.read_bytes() != before
    san = x509.load_pem_x509_certificate(after.cert.read_bytes()).extensions
    names = san.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "acs.example.net" in names.get_values_for_type(x509.DNSName)
    assert pki.tls_files().cert.read_bytes() == after.cert.read_bytes()


def test_agent_certificate_yields_its_endpoint_id(pki_env: Path, tmp_path: Path) -> None:
    files = pki.tls_files()
    cert, key = pki.Authority.ensure(pki_env).issue_usp_agent("os::012345-SIM0001")
    (tmp_path / "agent.pem").write_bytes(cert)
    (tmp_path / "agent.key").write_bytes(key)
    client = pki.client_context(files.ca, tmp_path / "agent.pem", tmp_path / "agent.key")
    ids, error = handshake(files.server_context(ssl.CERT_REQUIRED), client)
    assert error is None
    assert ids == ["os::012345-SIM0001"]


def test_client_of_another_ca_is_refused(pki_env: Path, tmp_path: Path) -> None:
    files = pki.tls_files()
    stranger = pki.Authority.ensure(tmp_path / "other-ca")
    cert, key = stranger.issue_usp_agent("os::012345-SIM0001")
    (tmp_path / "agent.pem").write_bytes(cert)
    (tmp_path / "agent.key").write_bytes(key)
    client = pki.client_context(files.ca, tmp_path / "agent.pem", tmp_path / "agent.key")
    result, _ = handshake(files.server_context(ssl.CERT_REQUIRED), client)
    assert isinstance(result, ssl.SSLError)


def test_device_that_does_not_trust_the_ca_refuses_the_server(
    pki_env: Path, tmp_path: Path
) -> None:
    files = pki.tls_files()
    stranger = pki.Authority.ensure(tmp_path / "other-ca")
    _, error = handshake(files.server_context(), pki.client_context(stranger.ca_path))
    assert isinstance(error, ssl.SSLCertVerificationError)


def test_optional_client_certificate(pki_env: Path) -> None:
    files = pki.tls_files()
    ids, error = handshake(files.server_context(ssl.CERT_OPTIONAL), pki.client_context(files.ca))
    assert error is None and ids == []


def test_operator_files_must_come_in_pairs(pki_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("OKTOSCRIPTS_TLS_CERT", "/nonexistent.pem")
    with pytest.raises(pki.config.ConfigError, match="OKTOSCRIPTS_TLS_KEY"):
        pki.tls_files()


def test_devicecert_command(pki_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env_cmd = [sys.executable, "manage.py", "devicecert", "proto::agent-1", "--out", str(out)]
    done = subprocess.run(
        env_cmd,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OKTOSCRIPTS_DATA_DIR": str(pki_env.parent)},
    )
    assert done.returncode == 0, done.stderr
    cert = x509.load_pem_x509_certificate((out / "proto__agent-1.pem").read_bytes())
    assert pki.usp_endpoint_ids(cert) == ["proto::agent-1"]
    assert (out / "ca.pem").read_bytes() == (pki_env / "ca.pem").read_bytes()
    assert (out / "proto__agent-1.key").stat().st_mode & 0o077 == 0
