"""The backend's entry point and its commands package, in this process: how a
command's output and refusals are said, and the standard library server served
from the caller's own thread (`serve --stdlib`)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from server_stub.__main__ import build_parser, main
from server_stub.booklet.editions import Booklets
from server_stub.commands.output import print_error, print_json
from server_stub.serving import EmbeddedServer


def test_a_result_is_one_json_line_that_keeps_its_letters(capsys):
    print_json({"title": "Cupones de año nuevo", "pages": 3})
    out = capsys.readouterr().out
    assert out == '{"title": "Cupones de año nuevo", "pages": 3}\n'
    assert json.loads(out) == {"title": "Cupones de año nuevo", "pages": 3}
    print_error("no such booklet edition (not_found)")
    assert capsys.readouterr().err == "error: no such booklet edition (not_found)\n"


def test_a_bad_argument_is_refused_before_any_database_is_opened(tmp_path, capsys):
    code = main(["booklet", "render", "--data", str(tmp_path / "nothing"), "--month", "2031-13",
                 "--out", str(tmp_path / "x.pdf")])
    assert code == 1
    assert capsys.readouterr().err == "error: month is YYYY-MM (invalid_value)\n"


def test_a_refusal_from_the_booklet_is_one_line_with_its_code_and_exit_1(api, capsys):
    draft = Booklets(api.backend).create({"month": "2031-05", "title": "", "paper": "A5", "pages": None,
                                          "placements": []})
    assert main(["booklet", "billing", "--data", str(api.path), "--edition", "bk_nope"]) == 1
    assert capsys.readouterr().err == "error: no such booklet edition (not_found)\n"
    assert main(["booklet", "billing", "--data", str(api.path), "--edition", draft["id"]]) == 1
    assert capsys.readouterr() == ("", "error: the edition has not been rendered yet (conflict)\n")


def test_every_command_has_its_runner():
    parser = build_parser()
    for argv in (["init", "--data", "d"], ["serve", "--data", "d"], ["demo-data", "--data", "d"],
                 ["booklet", "list", "--data", "d"], ["booklet", "billing", "--data", "d", "--edition", "e"],
                 ["booklet", "render", "--data", "d", "--month", "2031-05", "--out", "x.pdf"]):
        assert callable(parser.parse_args(argv).run), argv


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_the_embedded_server_serves_from_the_callers_thread_and_stops():
    server = EmbeddedServer(_app)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    with urllib.request.urlopen(server.url + "/", timeout=5) as answer:
        assert answer.read() == b"ok"
    server.stop()
    serving.join(timeout=5)
    assert not serving.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/", timeout=2)


def test_a_database_password_is_never_shown():
    from server_stub.storage.base import shown_dsn

    assert shown_dsn("postgresql://pika:s3cr3t@db:5432/pika") == "postgresql://pika:***@db:5432/pika"
    assert shown_dsn("postgresql://pika@db/pika?sslmode=require&PassWord=s3cr3t&x=1") == \
        "postgresql://pika@db/pika?sslmode=require&PassWord=***&x=1"
    assert shown_dsn("postgresql://pika@db/pika") == "postgresql://pika@db/pika"


def test_the_database_can_come_from_the_environment_not_the_command_line(pg_database, tmp_path, monkeypatch, capsys):
    """$PIKA_DATABASE keeps a password off the process list; init keeps it in the folder's private config."""
    from server_stub.datadir import DataDir

    monkeypatch.setenv("PIKA_DATABASE", pg_database)
    assert main(["init", "--data", str(tmp_path / "backend")]) == 0
    assert json.loads(capsys.readouterr().out)["admin_token"]
    assert DataDir(tmp_path / "backend").database() == pg_database
    assert (tmp_path / "backend" / "config.json").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("PIKA_DATABASE", "mysql://nope")
    assert main(["demo-data", "--data", str(tmp_path / "backend")]) == 1
    assert capsys.readouterr().err == "error: the database is a PostgreSQL URL, postgresql://user@host:port/name\n"


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("192.0.2.7", True), ("::", True),
                                          ("127.0.0.1", False), ("::1", False), ("localhost", False)])
def test_serving_plain_http_beyond_this_machine_is_warned_of(host, warned, tmp_path, monkeypatch, capsys):
    """The operator is told, before anything is served, that tokens and PINs would cross in clear."""
    from server_stub.commands import server

    assert main(["init", "--data", str(tmp_path / "backend")]) == 0
    capsys.readouterr()

    class Served(Exception):
        pass

    def serve_granian(*args, **kwargs):
        raise Served  # where the real server would start: what was said before it is what we check

    monkeypatch.setattr("server_stub.serving.serve_granian", serve_granian)
    args = build_parser().parse_args(["serve", "--data", str(tmp_path / "backend"), "--host", host])
    with pytest.raises(Served):
        server.serve(args)
    err = capsys.readouterr().err
    assert ("warning: serving plain HTTP on" in err) is warned, err
    if warned:
        assert "front-config" in err and host in err


def test_a_bad_limits_config_is_refused_before_any_worker_starts(tmp_path, monkeypatch, capsys):
    from server_stub.datadir import DataDir

    assert main(["init", "--data", str(tmp_path / "backend")]) == 0
    DataDir(tmp_path / "backend").set_config(limits={"device": {"rate_per_s": -1, "burst": 10}})
    capsys.readouterr()

    def serve_granian(*args, **kwargs):
        raise AssertionError("granian started with a config its workers refuse")

    monkeypatch.setattr("server_stub.serving.serve_granian", serve_granian)
    assert main(["serve", "--data", str(tmp_path / "backend")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "(invalid_config)" in err and "limits.device" in err, err
