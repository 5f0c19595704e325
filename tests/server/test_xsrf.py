"""A browser session (login cookie) must send Jupyter's XSRF token with every kubelab
call that changes something; a page on another site cannot, so it cannot start runs."""

from __future__ import annotations

import json
import urllib.parse
from http.cookies import SimpleCookie

import nbformat
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse


class Browser:
    """Cookies kept across calls, as a browser does (tornado's client keeps none)."""

    def __init__(self, client: AsyncHTTPClient, base: str) -> None:
        self.client = client  # pytest-jupyter's client of the test server
        self.base = base
        self.cookies: dict[str, str] = {}

    async def fetch(self, method: str, path: str, body: str | None = None, **headers: str):
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            response: HTTPResponse = await self.client.fetch(
                self.base + path,
                method=method,
                body=body,
                headers={"Cookie": cookie, **headers},
                follow_redirects=False,
                raise_error=False,
            )
        except HTTPClientError as error:
            raise AssertionError(f"{method} {path}: {error}") from None
        for header in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response


async def log_in(jp_serverapp, http_server_client, jp_base_url, jp_root_dir) -> Browser:
    """A browser logged in with the server's token through the login form."""
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["step:work"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), jp_root_dir / "nb.ipynb")
    browser = Browser(http_server_client, jp_base_url.rstrip("/"))
    await browser.fetch("GET", "/login")
    form = urllib.parse.urlencode(
        {"password": jp_serverapp.identity_provider.token, "_xsrf": browser.cookies["_xsrf"]}
    )
    response = await browser.fetch("POST", "/login", form)
    assert response.code == 302, response.body
    assert any(name.startswith("username-") for name in browser.cookies)
    return browser


async def test_a_browser_session_needs_the_xsrf_token_to_change_anything(
    jp_serverapp, http_server_client, jp_base_url, jp_root_dir
) -> None:
    browser = await log_in(jp_serverapp, http_server_client, jp_base_url, jp_root_dir)
    read = await browser.fetch("GET", "/kubelab/api/runs")
    assert read.code == 200 and json.loads(read.body)["runs"] == []
    run = json.dumps({"path": "nb.ipynb"})
    for path, body in (
        ("/kubelab/api/runs", run),
        ("/kubelab/api/pipelines/validate", run),
        ("/kubelab/api/runs/x/cancel", "{}"),
        ("/kubelab/api/jobs", json.dumps({"kind": "training", "spec": {}})),
    ):
        forged = await browser.fetch("POST", path, body)
        assert forged.code == 403, path
        assert b"'_xsrf' argument missing" in forged.body, forged.body
    deleted = await browser.fetch("DELETE", "/kubelab/api/jobs/x")
    assert deleted.code == 403
    listed = await browser.fetch("GET", "/kubelab/api/runs")
    assert json.loads(listed.body)["runs"] == []  # nothing was started
    # The page JupyterLab serves reads the cookie and sends it back: accepted.
    started = await browser.fetch(
        "POST", "/kubelab/api/runs", run, **{"X-XSRFToken": browser.cookies["_xsrf"]}
    )
    assert started.code == 201, started.body
