"""The till's rules for its backend's transport: plain HTTP to another machine is warned of and refused at
enrollment, a private CA is trusted through the setting `ca_file` or $SSL_CERT_FILE, a certificate the till
does not trust is said clearly (enrolling) or is "unreachable" with its reason logged (working).

Against a real TLS server on a loopback port (the standard library's, serving a canned answer), so these run
without nginx; tests/test_front.py does the same through the shipped nginx front and the real backend.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pos_app.cli.commands import main as till_main
from pos_app.store import TillStore
from pos_app.sync import client as client_module
from pos_app.sync.client import Unreachable, Untrusted, client_for, plain_http_to_another_host


def make_pki(folder: Path, *, name: str = "localhost") -> dict[str, Path]:
    """A private CA and a server certificate it signed for `name`, 127.0.0.1 and ::1; the files' paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test chain CA {folder.name}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


class _Canned(BaseHTTPRequestHandler):
    """Answers every request 200 {"ok": true}: enough to see the TLS handshake succeed or fail."""

    def do_GET(self):
        body = json.dumps({"ok": True, "status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def tls_server(tmp_path):
    pki = make_pki(tmp_path / "pki")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}", pki
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("url, plain", [
    ("http://192.0.2.7:8080", True), ("http://backend.example", True), ("HTTP://10.0.0.1", True),
    ("http://[2001:db8::1]:80", True), ("http://127.0.0.1:8080", False), ("http://127.3.4.5", False),
    ("http://localhost:8080", False), ("http://[::1]:8080", False), ("https://192.0.2.7", False),
    ("https://backend.example", False), ("", False), ("http://[::1", False),
])
def test_plain_http_to_another_host(url, plain):
    assert plain_http_to_another_host(url) is plain


def test_enroll_refuses_plain_http_to_another_host_before_sending_anything(tmp_path, capsys):
    till = tmp_path / "till"
    code = till_main(["enroll", "--data", str(till), "--server", "http://192.0.2.7:8080", "--code", "AAAA-BBBB-C"])
    err = capsys.readouterr().err
    assert code == 2
    assert "plain HTTP to another machine" in err and "https://" in err and "--insecure-http" in err
    store = TillStore(till / "till.sqlite3")
    try:
        assert not store.enrolled
    finally:
        store.close()


def _own_address() -> str | None:
    """This machine's address on its default route (a UDP socket's connect sends nothing), if it has one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.mark.allow_log_warnings("plain HTTP")
def test_insecure_http_lets_enroll_try(tmp_path, capsys):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    # Nothing listens on port 9 of this machine's own address: told --insecure-http, the till tries, and fails
    # to reach it, instead of refusing first.
    code = till_main(["enroll", "--data", str(tmp_path / "till"), "--server", f"http://{address}:9", "--code",
                      "AAAA-BBBB-C", "--insecure-http"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach" in err and "warning:" in err


def test_an_unreadable_ca_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    code = till_main(["enroll", "--data", str(tmp_path / "till"), "--server", "https://localhost:9",
                      "--code", "AAAA-BBBB-C", "--ca-file", str(bad)])
    assert code == 2 and "--ca-file" in capsys.readouterr().err


def test_a_private_ca_through_the_setting(tls_server):
    url, pki = tls_server
    with client_for({"server_url": url, "ca_file": str(pki["ca"])}) as client:
        assert client.health()["ok"] is True


def test_a_private_ca_through_ssl_cert_file(tls_server, monkeypatch):
    url, pki = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))
    with client_for({"server_url": url}) as client:
        assert client.health()["ok"] is True


def test_an_untrusted_certificate_is_unreachable_with_the_reason_logged(tls_server, tmp_path, caplog, monkeypatch):
    url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    other = make_pki(tmp_path / "other")
    for store in ({"server_url": url}, {"server_url": url, "ca_file": str(other["ca"])}):
        with caplog.at_level(logging.WARNING, logger="pos_app.sync.client"), client_for(store) as client:
            with pytest.raises(Untrusted) as raised:
                client.health()
        assert isinstance(raised.value, Unreachable)  # while working: decide offline, as for a network failure
        assert "the backend's certificate is not trusted" in str(raised.value)
        assert "the backend's certificate is not trusted" in caplog.text
        caplog.clear()


@pytest.mark.allow_log_warnings("cannot be used")
def test_a_ca_file_gone_is_unreachable_not_a_crash(tls_server, tmp_path, caplog):
    url, _ = tls_server
    with caplog.at_level(logging.WARNING, logger="pos_app.sync.client"):
        with client_for({"server_url": url, "ca_file": str(tmp_path / "gone.pem")}) as client:
            with pytest.raises(Untrusted, match="cannot be used"):
                client.health()
    assert "gone.pem" in caplog.text


@pytest.mark.allow_log_warnings("certificate is not trusted")
def test_enroll_says_an_untrusted_certificate_plainly(tls_server, tmp_path, capsys, monkeypatch):
    url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    code = till_main(["enroll", "--data", str(tmp_path / "till"), "--server", url, "--code", "AAAA-BBBB-C"])
    err = capsys.readouterr().err
    assert code == 1
    assert "the backend's certificate is not trusted" in err and "--ca-file" in err and "SSL_CERT_FILE" in err


def test_the_log_warns_once_per_plain_http_url(caplog, monkeypatch):
    monkeypatch.setattr(client_module, "_warned_urls", set())
    with caplog.at_level(logging.WARNING, logger="pos_app.sync.client"):
        for _ in range(3):
            with client_for({"server_url": "http://192.0.2.9:8080"}, timeout=0.05) as client:
                with pytest.raises(Unreachable):
                    client.health()
        with client_for({"server_url": "http://127.0.0.1:9"}) as client:
            with pytest.raises(Unreachable):
                client.health()
    warnings = [r for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(warnings) == 1 and "192.0.2.9" in warnings[0].getMessage()
    caplog.clear()


def test_the_status_bar_says_a_plain_http_backend(qtbot):
    from PySide6.QtWidgets import QStatusBar

    from pos_app.gui.status_line import StatusLine
    from pos_app.sync.status import SyncStatus

    bar = QStatusBar()
    qtbot.addWidget(bar)
    bar.show()
    line = StatusLine(bar)
    line.show(SyncStatus(), None, None, 0.0, server_url="http://192.0.2.7:8080")
    assert line.insecure_badge.isVisible() and line.insecure_badge.text()
    line.show(SyncStatus(), None, None, 0.0, server_url="https://backend.example")
    assert not line.insecure_badge.isVisible()
    line.show(SyncStatus(), None, None, 0.0, server_url="http://127.0.0.1:8080")
    assert not line.insecure_badge.isVisible()


def test_the_window_warns_of_its_plain_http_backend(make_window):
    window = make_window(role=None, language="en")  # the test till's backend is http://till-test
    assert window.status_line.insecure_badge.isVisible()
    assert "HTTP" in window.status_line.insecure_badge.text()
    assert "plain HTTP" in window.status_line.insecure_badge.toolTip()
