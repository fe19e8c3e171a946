"""The shipped nginx front (packaging/nginx/, written by `server_stub front-config`) over a real `serve`:
TLS from a private CA, tills enrolling and redeeming through it, and slow clients cut off by the front
while redemptions keep answering — the set-up README and docs/operating.md tell operators to run.

Skipped only when nginx is not installed (packaging/install.sh installs it; CI runs that).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pos_app.cli.commands import main as till_main
from pos_app.store import TillStore
from server_stub.__main__ import main as backend_main
from test_till_tls import make_pki

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
TIMEOUT_S = 2  # the front's header and body timeouts here (the shipped default is 5 s)


def _run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, **kwargs) -> None:
    deadline = time.time() + 20
    while True:
        try:
            httpx.get(url + "/api/v1/health", timeout=1, **kwargs).raise_for_status()
            return
        except httpx.HTTPError:
            assert proc.poll() is None, f"exited {proc.returncode}"
            assert time.time() < deadline, f"{url} did not come up"
            time.sleep(0.1)


def write_front(folder: Path, pki: dict, listen: str, upstream: str, *extra: str) -> Path:
    """The front's whole nginx.conf, from the shipped template by the operator's command, for a dedicated nginx."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    user = ("--user", "root") if os.geteuid() == 0 else ()  # as root the workers drop to this user
    _run("server_stub", "front-config", "--listen", listen, "--server-name", "localhost", "--cert",
         str(pki["cert"]), "--key", str(pki["key"]), "--upstream", upstream, "--standalone", str(folder),
         *user, "--out", str(conf), *extra)
    return conf


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """`serve` on loopback (one worker of 4 threads: few threads to hold) behind nginx with TLS."""
    if NGINX is None:
        pytest.skip("nginx is not installed (packaging/install.sh installs it)")
    base = tmp_path_factory.mktemp("front")
    pki = make_pki(base / "pki")
    data = base / "backend"
    admin = _run("server_stub", "init", "--data", str(data))["admin_token"]
    demo = _run("server_stub", "demo-data", "--data", str(data))
    port, front_port = _free_port(), _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "server_stub", "serve", "--data", str(data), "--host",
                              "127.0.0.1", "--port", str(port), "--workers", "1", "--threads", "4"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = write_front(base / "nginx", pki, f"127.0.0.1:{front_port}", f"127.0.0.1:{port}",
                       "--header-timeout", str(TIMEOUT_S), "--body-timeout", str(TIMEOUT_S))
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    url = f"https://localhost:{front_port}"
    try:
        _wait_for(f"http://127.0.0.1:{port}", serve)
        _wait_for(url, nginx, verify=ssl.create_default_context(cafile=str(pki["ca"])))
        yield {"url": url, "pki": pki, "admin": admin, "demo": demo, "base": base, "port": front_port,
               "conf": conf}
    finally:
        for proc in (nginx, serve):
            proc.terminate()
            proc.wait(timeout=10)
        nginx.stderr.close()


def _api(front) -> httpx.Client:
    return httpx.Client(base_url=front["url"] + "/api/v1", verify=ssl.create_default_context(
        cafile=str(front["pki"]["ca"])), headers={"Authorization": f"Bearer {front['admin']}"}, timeout=10)


def _enrollment_code(front) -> str:
    with _api(front) as api:
        response = api.post("/enrollment-codes", json={"store_id": front["demo"]["store_id"]})
        assert response.status_code == 201, response.text
        return response.json()["code"]


def _claim(front, n: int) -> str:
    personal = next(v for v in front["demo"]["vouchers"] if v["kind"] == "personal")
    with _api(front) as api:
        response = api.post("/claims", json={"voucher_id": personal["id"], "customer_id": f"front-{n}-{time.time()}"})
        assert response.status_code == 201, response.text
        return response.json()["token"]


def _till(capsys, *args: str) -> tuple[int, dict, str]:
    code = till_main(list(args))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, err


def _cashier(front) -> str:
    return next(s for s in front["demo"]["staff"] if s["role"] == "cashier")["id"]


def _enroll_and_redeem(front, till: Path, capsys, *ca: str) -> dict:
    code, enrolled, err = _till(capsys, "enroll", "--data", str(till), "--server", front["url"],
                                "--code", _enrollment_code(front), *ca)
    assert code == 0, err
    assert enrolled["sync"]["error"] is None
    started = time.perf_counter()
    code, outcome, err = _till(capsys, "redeem", "--data", str(till), "--staff", _cashier(front), _claim(front, 1))
    assert code == 0, err
    assert outcome["accepted"] is True and outcome["decided"] == "online"
    return {"seconds": time.perf_counter() - started, **outcome}


def test_a_till_enrolls_and_redeems_through_the_front_with_the_ca_as_a_setting(front, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    till = tmp_path / "till"
    _enroll_and_redeem(front, till, capsys, "--ca-file", str(front["pki"]["ca"]))
    store = TillStore(till / "till.sqlite3")
    try:
        assert store.get("ca_file") == str(front["pki"]["ca"])
    finally:
        store.close()


def test_a_till_trusts_the_ca_through_ssl_cert_file(front, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(front["pki"]["ca"]))
    _enroll_and_redeem(front, tmp_path / "till", capsys)


@pytest.mark.allow_log_warnings("certificate is not trusted")
def test_without_the_ca_the_till_refuses_the_front_clearly(front, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    code, _, err = _till(capsys, "enroll", "--data", str(tmp_path / "till"), "--server", front["url"],
                         "--code", "AAAA-BBBB-C")
    assert code == 1
    assert "the backend's certificate is not trusted" in err and "--ca-file" in err


@pytest.mark.allow_log_warnings("certificate is not trusted")
def test_a_certificate_no_longer_trusted_makes_the_till_decide_offline(front, tmp_path, capsys, monkeypatch, caplog):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    till = tmp_path / "till"
    _enroll_and_redeem(front, till, capsys, "--ca-file", str(front["pki"]["ca"]))
    other = make_pki(tmp_path / "other")
    store = TillStore(till / "till.sqlite3")
    try:
        store.set("ca_file", str(other["ca"]))  # the front's certificate is now one this till does not trust
    finally:
        store.close()
    code, outcome, err = _till(capsys, "redeem", "--data", str(till), "--printed",
                               next(v for v in front["demo"]["vouchers"] if v["kind"] == "printed")["code"])
    assert outcome["decided"] == "offline", (outcome, err)
    assert "the backend's certificate is not trusted" in caplog.text


def test_the_front_keeps_metrics_and_oversize_bodies_inside(front):
    with _api(front) as api:
        assert api.get("/metrics").status_code == 404
        assert httpx.get(front["url"] + "/metrics", verify=ssl.create_default_context(
            cafile=str(front["pki"]["ca"]))).status_code == 404
        big = api.post("/sync", content=b"x" * (1_048_576 + 1), headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"


def _tls_socket(front) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(front["pki"]["ca"]))
    raw = socket.create_connection(("127.0.0.1", front["port"]), timeout=30)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_slow_clients_are_cut_off_by_the_front_while_redemptions_answer(front, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    till = tmp_path / "till"
    _enroll_and_redeem(front, till, capsys, "--ca-file", str(front["pki"]["ca"]))

    # More slow bodies than the backend has request threads (4), each sending a byte a second: the front
    # holds them all, so granian's threads stay free.
    stop = threading.Event()
    bodies = []
    for _ in range(12):
        sock = _tls_socket(front)
        sock.sendall(b"POST /api/v1/devices/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 200\r\n\r\n{")
        bodies.append(sock)

    def trickle():
        while not stop.wait(1.0):
            for sock in bodies:
                try:
                    sock.sendall(b" ")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.5)
        for n in range(3):
            started = time.perf_counter()
            code, outcome, err = _till(capsys, "redeem", "--data", str(till), "--staff", _cashier(front),
                                       _claim(front, n + 10))
            assert outcome.get("decided") == "online", (outcome, err)
            assert time.perf_counter() - started < 1.5

        # A slow header: a byte every half second never finishes within the header timeout.
        header = _tls_socket(front)
        cut = _slow_until_closed(header, b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200,
                                 limit_s=TIMEOUT_S + 3)
        assert TIMEOUT_S - 0.5 <= cut <= TIMEOUT_S + 2
        # A body that stops: cut off once it has been silent for the body timeout.
        body = _tls_socket(front)
        body.sendall(b"POST /api/v1/sync HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"entr")
        cut = _slow_until_closed(body, b"", limit_s=TIMEOUT_S + 3)
        assert TIMEOUT_S - 0.5 <= cut <= TIMEOUT_S + 2
    finally:
        stop.set()
        trickler.join(timeout=5)
        for sock in bodies:
            sock.close()


def _slow_until_closed(sock: ssl.SSLSocket, trickle: bytes, *, limit_s: float) -> float:
    """Send `trickle` a byte every half second (or nothing, when empty) until the front closes the connection
    (or answers 408); the seconds that took. Fails past `limit_s`."""
    started = time.monotonic()
    sock.settimeout(0.5)
    sent = 0
    try:
        while time.monotonic() - started < limit_s:
            if sent < len(trickle):
                sock.sendall(trickle[sent:sent + 1])
                sent += 1
            try:
                answer = sock.recv(4096)
            except (TimeoutError, socket.timeout):
                continue
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
            return time.monotonic() - started
    except (ConnectionError, ssl.SSLError, BrokenPipeError):
        return time.monotonic() - started
    finally:
        sock.close()
    pytest.fail(f"the front kept a slow client past {limit_s} s")


def test_the_site_part_fits_debians_nginx_conf(front, tmp_path):
    """Without --standalone the command writes what Debian's /etc/nginx/conf.d/ includes; nginx -t takes it there."""
    debian = Path("/etc/nginx/nginx.conf")
    if not debian.is_file():
        pytest.skip("no /etc/nginx/nginx.conf (not Debian's package)")
    site = tmp_path / "pika-backend.conf"
    pki = front["pki"]
    _run("server_stub", "front-config", "--server-name", "backend.example", "--cert", str(pki["cert"]),
         "--key", str(pki["key"]), "--listen", "127.0.0.1:18443", "--hsts", "--out", str(site))
    text = debian.read_text()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("include /etc/nginx/conf.d/*.conf;", f"include {site};")
                    .replace("include /etc/nginx/sites-enabled/*;", "")
                    .replace("pid /run/nginx.pid;", f"pid {tmp_path}/nginx.pid;"))
    check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert "Strict-Transport-Security" in site.read_text()


@pytest.mark.parametrize("bad, says", [
    (("--upstream", "192.0.2.1:8080"), "loopback"),
    (("--upstream", "localhost:8080"), "IP address"),
    (("--server-name", "x; include /etc/passwd"), "--server-name"),
    (("--listen", "70000"), "port"),
    (("--cert", "/nonexistent.pem"), "--cert"),
    (("--header-timeout", "0"), "between"),
    (("--user", "root"), "--standalone"),
])
def test_front_config_refuses_a_bad_option(front, tmp_path, capsys, bad, says):
    pki = front["pki"]
    options = {"--server-name": "localhost", "--cert": str(pki["cert"]), "--key": str(pki["key"]),
               "--out": str(tmp_path / "front.conf")}
    extra = []
    if bad[0] in options:
        options[bad[0]] = bad[1]
    else:
        extra = list(bad)
    args = ["front-config", *[x for pair in options.items() for x in pair], *extra]
    assert backend_main(args) == 1
    err = capsys.readouterr().err
    assert says in err and "(bad_option)" in err
    assert not (tmp_path / "front.conf").exists()


def test_the_service_unit_serves_on_loopback_hardened(tmp_path):
    unit = (ROOT / "packaging" / "systemd" / "pika-backend.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert " serve " in start and "--host 127.0.0.1" in start and "--workers" in start
    for line in ("User=pika", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/srv/pika", "PrivateTmp=yes", "UMask=0077", "EnvironmentFile=-/etc/pika/backend.env"):
        assert line in unit.splitlines(), line
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze to verify the unit with")
    # Verified as written, with this machine's Python in place of the installed checkout's.
    copy = tmp_path / "pika-backend.service"
    copy.write_text(unit.replace("/opt/pika-till/.venv/bin/python", sys.executable))
    check = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "pika-backend" not in check.stderr, check.stderr


def test_the_front_replaces_a_clients_x_real_ip(front):
    """Wrong enrollment codes are counted by the address the backend believes: through the front, the
    address nginx saw, whatever X-Real-IP the client wrote (one forged address a try would never lock)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=ssl.create_default_context(
        cafile=str(front["pki"]["ca"])))
    with httpx.Client(base_url=front["url"] + "/api/v1", transport=transport, timeout=10) as guesser:
        statuses = [guesser.post("/devices/enroll", json={"code": "ZZZZ-ZZZZ-Z", "name": "guess"},
                                 headers={"X-Real-IP": f"203.0.113.{n}", "X-Forwarded-For": f"198.51.100.{n}"}
                                 ).status_code for n in range(12)]
    assert statuses[-1] == 429 and statuses.count(429) >= 1, statuses
    # Another address (the tills' 127.0.0.1) is not locked out by it.
    with _api(front) as api:
        assert api.post("/devices/enroll", json={"code": "ZZZZ-ZZZZ-Z", "name": "x"}).status_code != 429


def test_the_console_behind_the_front_sets_secure_cookies(front):
    """Through nginx with TLS the backend sees plain HTTP from loopback; the front's X-Forwarded-Proto
    (a trusted proxy's) makes the console's cookies Secure, as docs/console.md says."""
    import re

    verify = ssl.create_default_context(cafile=str(front["pki"]["ca"]))
    with httpx.Client(base_url=front["url"], verify=verify, timeout=10) as browser:
        assert browser.get("/").headers["location"] == "/console/"
        page = browser.get("/console/sign-in")
        assert page.status_code == 200 and "Secure" in page.headers["set-cookie"]  # the sign-in form's cookie
        token = re.findall(r'name="csrf" value="([^"]+)"', page.text)[-1]
        signed = browser.post("/console/sign-in", data={"csrf": token, "how": "token", "token": front["admin"]})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("pika_session=") and "Secure" in cookie and "HttpOnly" in cookie
        assert browser.get("/console/").status_code == 200
