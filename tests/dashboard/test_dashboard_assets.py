"""The dashboard's files over real HTTP: the page and every file it loads are served locally
with the right types and a strict Content-Security-Policy; nothing else is reachable; the
scripts never turn data into markup."""

from __future__ import annotations

import re
from importlib.resources import files

import httpx
import pytest

from csms.api.stream import hub_of, install
from csms.app import CentralSystem
from csms.http.dashboard import static_assets

LOCAL_REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')
JS_IMPORT = re.compile(r'from "(\./[^"]+)"')
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'
MARKUP_SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                "new Function")


SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
"""For what does not depend on the database (the page's tests in Chromium run on both)."""


@SQLITE_ONLY
async def test_page_and_everything_it_loads(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"

    references = LOCAL_REFERENCE.findall(page.text)
    assert "/static/js/main.js" in references
    assert "/static/dashboard.css" in references
    queue = [ref for ref in references if ref.startswith("/static/")]
    seen: set[str] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path)
        assert response.status_code == 200, path
        if path.endswith(".js"):
            assert response.headers["content-type"] == "text/javascript; charset=utf-8"
            folder = path.rsplit("/", 1)[0]
            queue += [f"{folder}/{name[2:]}" for name in JS_IMPORT.findall(response.text)]
        elif path.endswith(".css"):
            assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert {"/static/js/main.js", "/static/js/stream.js", "/static/js/views.js",
            "/static/js/api.js", "/static/js/sla.js"} <= seen


@SQLITE_ONLY
async def test_only_shipped_files_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/static/nothing.js", "/static/../dashboard.py", "/static/%2e%2e/app.py",
                 "/static/js/../../dashboard.py", "/static/index.html"):
        response = await client.get(path)
        assert response.status_code == 404, path
    assert (await client.get("/api/v1/fleet")).status_code == 401  # data needs a token


def test_static_files_are_local_and_never_build_markup() -> None:
    assets = static_assets()
    assert {"index.html", "dashboard.css", "js/main.js", "js/dom.js"} <= set(assets)
    root = files("csms.http") / "static"
    for name, asset in assets.items():
        text = asset.resource.read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
        assert "http://" not in text and "https://" not in text, name
        assert not re.search(r'(?:src|href)="//', text), name
        if name.endswith(".js"):
            for sink in MARKUP_SINKS:
                assert sink not in text, f"{name} uses {sink}"
    assert (root / "index.html").is_file()


@SQLITE_ONLY
async def test_the_stream_hub_is_a_component(api_central: CentralSystem) -> None:
    component = install(api_central)
    assert component is hub_of(api_central.api)
    await component.start()
    await component.stop()
    assert hub_of(api_central.api).closed
