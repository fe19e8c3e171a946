"""`python -m server_stub front-config`: the nginx front's config, written from the template in packaging/nginx/.

granian reads a request's body on one of its few Python threads, so clients
that send slowly can hold every thread (issue 15). nginx in front reads each
request whole, within seconds, and terminates TLS; this command fills the
shipped template with one deployment's values, checked, so the config the
tests and the bench run is the one operators run (docs/operating.md, "TLS and
the front"). Without `--standalone` it writes the part for nginx's http
context (Debian's /etc/nginx/conf.d/); with it, a whole nginx.conf for a
dedicated nginx whose runtime files live in that folder.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from pos_app import resources

from ..errors import Invalid
from ..http import MAX_BODY_BYTES
from .output import print_json

TEMPLATES = resources.directory("front")  # packaging/nginx in a checkout, the package's copy when installed
SITE_TEMPLATE = "pika-backend.conf.template"
STANDALONE_TEMPLATE = "standalone.conf.template"
HSTS_LINE = '    add_header Strict-Transport-Security "max-age=31536000" always;\n'
# What may go into a config value: no whitespace, quote, `;`, braces, `$` or `#`, which would end or change
# a directive (a path or name is written into nginx's syntax, so it is refused rather than escaped).
_SAFE = re.compile(r"[A-Za-z0-9._/+@:,=\-\[\]]{1,1024}")
_NAME = re.compile(r"(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|_")


def add_to(sub) -> None:
    """Add `front-config` to `sub`, the subparsers of `python -m server_stub`."""
    p = sub.add_parser("front-config", help="write the nginx front's config (TLS, slow clients cut off)")
    p.add_argument("--listen", default="443", help="the front's port, or ADDRESS:PORT (default 443)")
    p.add_argument("--server-name", required=True, help="the name tills use in https://NAME/ (the certificate's)")
    p.add_argument("--cert", required=True, help="the certificate chain (PEM), the server's first")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--upstream", default="127.0.0.1:8080",
                   help="where `serve` listens, on loopback (default 127.0.0.1:8080)")
    p.add_argument("--header-timeout", type=int, default=5, help="seconds a client may pause in its headers")
    p.add_argument("--body-timeout", type=int, default=5, help="seconds a client may pause in its body")
    p.add_argument("--conn-per-address", type=int, default=64,
                   help="open connections one client address may hold (a store's tills may share one)")
    p.add_argument("--hsts", action="store_true", help="tell browsers to use only HTTPS for a year")
    p.add_argument("--standalone", metavar="DIR",
                   help="write a whole nginx.conf for a dedicated nginx, its pid, log and buffers in DIR")
    p.add_argument("--user", help="with --standalone, started as root: the user nginx's workers run as")
    p.add_argument("--workers", type=int, default=1, help="with --standalone: nginx worker processes")
    p.add_argument("--out", required=True, help="the file to write")
    p.set_defaults(run=run)


def run(args) -> int:
    values = _checked(args)
    text = render(values)
    out = Path(args.out)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, out)  # nginx never reads half a file
    shown = {"out": str(out), "listen": values["LISTEN"], "server_name": values["SERVER_NAME"],
             "upstream": values["UPSTREAM"]}
    if args.standalone:
        shown.update(start=f"nginx -c {out}", stop=f"nginx -c {out} -s quit")
    else:
        shown.update(check="nginx -t", reload="nginx -s reload")
    print_json(shown)
    return 0


def render(values: dict[str, str]) -> str:
    """The config: the site template filled in, inside the standalone one when `values` has a PREFIX."""
    site = _fill(_template(SITE_TEMPLATE), values)
    if "PREFIX" not in values:
        return site
    return _fill(_template(STANDALONE_TEMPLATE), {**values, "SITE": site})


def _template(name: str) -> str:
    path = TEMPLATES / name
    if not path.is_file():
        raise Invalid("no_template", f"the front's template {path} is missing: a damaged install or checkout")
    return path.read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        return values[match.group(1)]
    return re.sub(r"@([A-Z_]+)@", one, text)


def _checked(args) -> dict[str, str]:
    """Every option checked and turned into the text the template takes; Invalid for the first one that is wrong."""
    values = {
        "LISTEN": _listen(args.listen),
        "SERVER_NAME": _server_name(args.server_name),
        "CERT": _readable_file(args.cert, "--cert"),
        "KEY": _readable_file(args.key, "--key"),
        "UPSTREAM": _upstream(args.upstream),
        "HEADER_TIMEOUT": str(_bounded(args.header_timeout, "--header-timeout", 1, 60)),
        "BODY_TIMEOUT": str(_bounded(args.body_timeout, "--body-timeout", 1, 60)),
        "CONN_PER_ADDRESS": str(_bounded(args.conn_per_address, "--conn-per-address", 1, 100_000)),
        "MAX_BODY": str(MAX_BODY_BYTES),
        "HSTS": HSTS_LINE if args.hsts else "",
    }
    if args.standalone:
        prefix = Path(args.standalone).resolve()
        if not prefix.is_dir():
            raise Invalid("bad_option", f"--standalone {args.standalone}: no such folder")
        values["PREFIX"] = _safe(str(prefix), "--standalone")
        values["CONF"] = _safe(str(Path(args.out).resolve()), "--out")
        values["USER"] = f"user {_safe(args.user, '--user')};\n" if args.user else ""
        values["WORKERS"] = str(_bounded(args.workers, "--workers", 1, 64))
    elif args.user:
        raise Invalid("bad_option", "--user is for --standalone: Debian's nginx.conf names its own user")
    return values


def _safe(text: str, option: str) -> str:
    if not _SAFE.fullmatch(text or ""):
        raise Invalid("bad_option", f"{option} {text!r}: only letters, digits and ._/+@:,=-[] may appear")
    return text


def _bounded(value: int, option: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise Invalid("bad_option", f"{option} {value}: between {low} and {high}")
    return value


def _port(text: str, option: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise Invalid("bad_option", f"{option}: {text!r} is not a port (1-65535)")
    return int(text)


def _host_port(text: str, option: str) -> tuple[str | None, int]:
    """'PORT', 'ADDRESS:PORT' or '[IPv6]:PORT' as (address or None, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return None, _port(text, option)
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise Invalid("bad_option", f"{option} {text!r}: the address must be an IP address") from None
    return host, _port(port, option)


def _joined(host: str | None, port: int) -> str:
    if host is None:
        return str(port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen(text: str) -> str:
    return _joined(*_host_port(text, "--listen"))


def _upstream(text: str) -> str:
    host, port = _host_port(text, "--upstream")
    # Between the front and granian the request is plain HTTP, tokens and PINs readable: it must not leave
    # this machine.
    if host is None or not ipaddress.ip_address(host).is_loopback:
        raise Invalid("bad_option", f"--upstream {text!r}: give ADDRESS:PORT on loopback (127.0.0.1:8080): "
                                    "between the front and `serve` the traffic is not encrypted")
    return _joined(host, port)


def _server_name(text: str) -> str:
    if not _NAME.fullmatch(text or ""):
        raise Invalid("bad_option", f"--server-name {text!r}: a host name (backend.example.com), or _ for any")
    return text


def _readable_file(text: str, option: str) -> str:
    path = Path(text).resolve()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise Invalid("bad_option", f"{option} {text}: no such readable file")
    return _safe(str(path), option)
