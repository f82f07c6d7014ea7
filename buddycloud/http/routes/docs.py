"""`/api/openapi.json` and `/api/docs`: the API's description, as data and as a web page.

The page is rendered here from the same description, as one self-contained HTML document:
no script, no stylesheet or font from elsewhere, so it works offline and behind any
content security policy.
"""

from __future__ import annotations

import functools
import json
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from buddycloud.http.openapi import description

METHODS = ("get", "post", "put", "delete")
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1b1b1b; }
h1 { margin-bottom: .2rem; }
section.op { border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem; }
.method { font-weight: bold; text-transform: uppercase; display: inline-block;
          min-width: 4.5rem; }
.get { color: #05683a; } .post { color: #124e96; } .put { color: #7a4b00; }
.delete { color: #a01818; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
pre { background: #f5f5f5; padding: .5rem; overflow-x: auto; }
table { border-collapse: collapse; margin: .3rem 0; }
td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
nav a { margin-right: .8rem; }
"""


async def openapi_get(request: Request) -> Response:
    """`GET /api/openapi.json`: the OpenAPI 3.1 description of every route."""
    return JSONResponse(description())


async def docs_get(request: Request) -> Response:
    """`GET /api/docs`: the description as a browsable page."""
    return HTMLResponse(_page())


@functools.lru_cache(maxsize=1)
def _page() -> str:
    spec = description()
    info = spec["info"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(info['title'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])}</h1>",
        f"<p>Version {escape(info['version'])}. {escape(info['description'])}</p>",
        '<p>The same description as data: <a href="openapi.json">openapi.json</a>.</p>',
        "<nav>",
        *(
            f'<a href="#{_anchor(method, path)}">{method.upper()} {escape(path)}</a>'
            for path, item in spec["paths"].items()
            for method in METHODS
            if method in item
        ),
        "</nav>",
    ]
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                parts.append(_operation(method, path, item[method]))
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>')
        parts.append(f"<pre>{escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _anchor(method: str, path: str) -> str:
    cleaned = "".join(char if char.isalnum() else "-" for char in path)
    return f"{method}{cleaned}"


def _schema_text(schema: dict[str, Any]) -> str:
    reference = schema.get("$ref")
    if isinstance(reference, str):
        name = reference.rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    return f"<code>{escape(json.dumps(schema))}</code>"


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    security = operation.get("security", [])
    if security == [{}]:
        auth = "no sign-in"
    elif {} in security:
        auth = "sign-in optional (HTTP Basic)"
    else:
        auth = "sign-in required (HTTP Basic)"
    parts = [
        f'<section class="op" id="{_anchor(method, path)}">',
        f'<h2><span class="method {method}">{method}</span> <code>{escape(path)}</code></h2>',
        f"<p>{escape(operation['summary'])}. <em>{auth}</em>.</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        parts.append("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>")
        for parameter in parameters:
            required = " (required)" if parameter.get("required") else ""
            parts.append(
                f"<tr><td><code>{escape(parameter['name'])}</code>{required}</td>"
                f"<td>{escape(parameter['in'])}</td>"
                f"<td>{escape(parameter.get('description', ''))} "
                f"{_schema_text(parameter['schema'])}</td></tr>"
            )
        parts.append("</table>")
    body = operation.get("requestBody")
    if body is not None:
        parts.append("<p>Body:</p><ul>")
        for media_type, content in body["content"].items():
            parts.append(
                f"<li><code>{escape(media_type)}</code>: {_schema_text(content['schema'])}</li>"
            )
        parts.append("</ul>")
    parts.append("<table><tr><th>status</th><th>answer</th></tr>")
    for status, response in operation["responses"].items():
        contents = ", ".join(
            f"<code>{escape(media_type)}</code> {_schema_text(content['schema'])}"
            for media_type, content in response.get("content", {}).items()
        )
        headers = ", ".join(f"<code>{escape(name)}</code>" for name in response.get("headers", {}))
        extra = f"; headers {headers}" if headers else ""
        parts.append(
            f"<tr><td>{escape(status)}</td>"
            f"<td>{escape(response['description'])}{extra}<br>{contents}</td></tr>"
        )
    parts.append("</table></section>")
    return "\n".join(parts)
