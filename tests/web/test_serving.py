"""How `buddycloud serve` serves the web client: the page at `/`, its files under
`/static/`, the JavaScript SDK under `/sdk/`, all from inside the Python package."""

from __future__ import annotations

from pathlib import Path

from http_support import Server

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SDK = ROOT / "buddycloud" / "web" / "sdk" / "index.js"
SOURCE_SDK = ROOT / "sdk" / "js" / "src" / "index.js"


def test_the_packaged_sdk_is_the_sdk_of_sdk_js() -> None:
    # The package carries a copy of sdk/js/src/index.js (docs/web.md): after changing the
    # SDK, run `cp sdk/js/src/index.js buddycloud/web/sdk/index.js`.
    assert PACKAGE_SDK.read_bytes() == SOURCE_SDK.read_bytes(), (
        "buddycloud/web/sdk/index.js differs from sdk/js/src/index.js: "
        "cp sdk/js/src/index.js buddycloud/web/sdk/index.js"
    )


def test_the_package_data_holds_every_file_of_the_client() -> None:
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["buddycloud"]
    web = ROOT / "buddycloud" / "web"
    shipped = {
        path
        for pattern in patterns
        for path in (ROOT / "buddycloud").glob(pattern)
        if path.is_relative_to(web)
    }
    assert shipped and shipped == {path for path in web.rglob("*") if path.is_file()}


async def test_the_page_is_served_at_the_root_with_a_strict_content_security_policy(
    server: Server,
) -> None:
    async with server.client() as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_the_scripts_styles_and_sdk_are_served_from_the_package(server: Server) -> None:
    async with server.client() as client:
        for path, kind in [
            ("/static/app.js", "javascript"),
            ("/static/dom.js", "javascript"),
            ("/static/errors.js", "javascript"),
            ("/static/style.css", "text/css"),
            ("/sdk/index.js", "javascript"),
        ]:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert kind in answer.headers["content-type"], (path, answer.headers)
        sdk = await client.get("/sdk/index.js")
    assert sdk.content == SOURCE_SDK.read_bytes()


async def test_a_file_that_is_not_there_is_a_404_and_nothing_outside_is_reachable(
    server: Server,
) -> None:
    async with server.client() as client:
        missing = await client.get("/static/nothing.js")
        outside = await client.get("/static/..%2F..%2Fconfig.py")
        dotdot = await client.get("/sdk/../../pyproject.toml")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no-such-endpoint"
    assert outside.status_code == 404
    assert dotdot.status_code == 404


def test_no_client_code_sets_html_from_strings() -> None:
    # Content from other users is text only: the client builds every element with
    # dom.js (createElement, text nodes), never from HTML strings.
    for path in (ROOT / "buddycloud" / "web" / "static").glob("*.js"):
        source = path.read_text()
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML(", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"
