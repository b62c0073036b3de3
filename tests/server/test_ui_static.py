"""The console's static files: security headers, content types, caching, no inline code, and
record previews that never render active content (SVG/HTML are downloads)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from tests.helpers import NO_AUTH

UI = Path(__file__).resolve().parents[2] / "edge" / "ui"
PAGES = ["ui/", "ui/index.html", "ui/upload.html"]


def test_base_redirects_to_console(server):
    r = requests.get(server.url + "/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/ui/"
    r = requests.get(server.url + "/ui", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/ui/"


@pytest.mark.parametrize("path", PAGES + ["ui/app.css", "ui/js/app.js", "ui/vendor/tus.min.js", "ui/features.json",
                                          "ui/no-such-file.js"])
def test_security_headers_on_every_console_answer(server, path):
    r = requests.get(f"{server.url}/{path}")
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert set(directives["img-src"]) == {"'self'", "blob:", "data:"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path,ctype", [
    ("ui/", "text/html; charset=utf-8"),
    ("ui/upload.html", "text/html; charset=utf-8"),
    ("ui/app.css", "text/css; charset=utf-8"),
    ("ui/js/app.js", "text/javascript; charset=utf-8"),
    ("ui/vendor/qrcode.mjs", "text/javascript; charset=utf-8"),
    ("ui/favicon.svg", "image/svg+xml"),
    ("ui/features.json", "application/json"),
    ("ui/vendor/tus-js-client.LICENSE.txt", "text/plain; charset=utf-8"),
])
def test_content_types(server, path, ctype):
    r = requests.get(f"{server.url}/{path}")
    assert r.status_code == 200
    assert r.headers["content-type"] == ctype


def test_etag_revalidation_and_head(server):
    r = requests.get(server.url + "/ui/js/app.js")
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "no-cache"
    r2 = requests.get(server.url + "/ui/js/app.js", headers={"if-none-match": etag})
    assert r2.status_code == 304 and r2.content == b""
    assert r2.headers["content-security-policy"]
    h = requests.head(server.url + "/ui/js/app.js")
    assert h.status_code == 200 and int(h.headers["content-length"]) == len(r.content)


@pytest.mark.parametrize("path", ["ui/../pyproject.toml", "ui/%2e%2e/edge/main.py", "ui/js/../../../edge/main.py",
                                  "ui/.hidden", "ui/js/", "ui/features.json/x"])
def test_no_path_escapes(server, path):
    r = requests.get(f"{server.url}/{path}")
    assert r.status_code == 404


def test_features_are_booleans_only(server):
    doc = requests.get(server.url + "/ui/features.json").json()
    assert doc["auth"] is False and doc["upload_links"] is True
    for key, value in doc.items():
        assert isinstance(value, (bool, str)), key


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name} on <{tag}>")
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"external resource {value}")


@pytest.mark.parametrize("name", ["index.html", "upload.html", "download.html"])
def test_no_inline_code_in_pages(name):
    scan = _Scan()
    scan.feed((UI / name).read_text())
    assert scan.problems == []


def test_scripts_never_use_inner_html_or_eval():
    for path in (UI / "js").rglob("*.js"):
        text = path.read_text()
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert bad not in text, f"{path.name} uses {bad}"
    # the vendored libraries need no eval either (the CSP would block it)
    for path in (UI / "vendor").glob("*js"):
        text = path.read_text()
        assert "eval(" not in text and "new Function" not in text, path.name


def test_vendored_libraries_carry_their_licences():
    assert "MIT" in (UI / "vendor" / "tus-js-client.LICENSE.txt").read_text()
    assert "MIT" in (UI / "vendor" / "qrcode-generator.LICENSE.txt").read_text()
    listed = (UI / "vendor" / "README.md").read_text()
    for name in (p.name for p in (UI / "vendor").iterdir() if p.suffix in (".js", ".mjs")):
        assert f"`{name}`" in listed, f"{name} is not listed (version, licence) in vendor/README.md"


def test_previews_render_only_raster_images_and_text():
    """The record browser's allow-list: SVG and HTML are never previewed, only downloaded."""
    text = (UI / "js" / "media.js").read_text()
    images = re.search(r"IMAGE_TYPES = new Set\(\[([^\]]*)\]\)", text).group(1)
    texts = re.search(r"TEXT_TYPES = new Set\(\[([^\]]*)\]\)", text).group(1)
    assert "svg" not in images and "html" not in images
    assert "svg" not in texts and "html" not in texts and "xml" not in texts
    # downloads are handed to the browser as opaque bytes
    assert 'type: "application/octet-stream"' in (UI / "js" / "pages" / "records.js").read_text()


@pytest.mark.parametrize("ctype", ["image/svg+xml", "text/html"])
def test_active_content_records_are_served_as_attachments(server, bucket_name, ctype):
    api = server.api
    assert requests.post(f"{api}/b/{bucket_name}").status_code == 200
    body = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    r = requests.post(f"{api}/b/{bucket_name}/doc?ts=1", data=body, headers={"content-type": ctype})
    assert r.status_code == 200
    r = requests.get(f"{api}/b/{bucket_name}/doc?ts=1")
    assert r.headers["content-disposition"].startswith("attachment")


def test_console_and_metrics_follow_the_base_path(make_server):
    srv = make_server({"RS_API_BASE_PATH": "edge"}, auth=NO_AUTH)
    r = requests.get(srv.url + "/edge/", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/edge/ui/"
    assert requests.get(srv.url + "/edge/ui", allow_redirects=False).headers["location"] == "/edge/ui/"
    assert requests.get(srv.url + "/edge/ui/").status_code == 200
    assert requests.get(srv.url + "/edge/ui/features.json").json()["base_path"] == "/edge/"
    assert requests.get(srv.url + "/edge/metrics").status_code == 200
    assert requests.get(srv.url + "/ui/").status_code == 404
