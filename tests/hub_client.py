"""A small client that drives a tenant hub over HTTP and websockets, as a browser does."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import requests
import websocket


class HubClient:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.s = requests.Session()

    def xsrf(self) -> str:
        for c in self.s.cookies:
            if c.name == "_xsrf" and c.path == "/hub/":
                return str(c.value)
        return str(self.s.cookies.get("_xsrf"))

    def login_only(self, username: str, password: str) -> requests.Response:
        """Log in without following the redirect to the landing page."""
        self.s.get(self.base + "/hub/login")
        return self.s.post(self.base + "/hub/login?next=", data={"username": username, "password": password,
                                                                 "_xsrf": self.xsrf()}, allow_redirects=False,
                           timeout=60)

    def login(self, username: str, password: str) -> requests.Response:
        """Log in; returns the page the hub lands on (read whole, within a wall-clock limit)."""
        self.s.get(self.base + "/hub/login")
        r = self.s.post(self.base + "/hub/login?next=", data={
            "username": username, "password": password, "_xsrf": self.xsrf()}, stream=True, timeout=60)
        return self._read(r)

    @staticmethod
    def _read(r: requests.Response, limit_s: float = 60) -> requests.Response:
        """The whole response; a page still streaming after ``limit_s`` fails the test (Voila keeps a page
        it has not finished open with heartbeats, so the read timeout alone would never fire)."""
        deadline = time.monotonic() + limit_s
        chunks = []
        for chunk in r.iter_content(chunk_size=None):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                r.close()
                raise AssertionError(f"{r.url} still streaming after {limit_s:.0f} s")
        r._content = b"".join(chunks)
        return r

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"X-XSRFToken": self.xsrf(), **kw.pop("headers", {})}
        return self.s.request(method, self.base + path, headers=headers, timeout=120, **kw)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.s.cookies)


class Kernel:
    """The Jupyter kernel websocket protocol (JSON frames), enough to run code and talk to widgets."""

    def __init__(self, url: str, header: dict[str, str] | None = None, cookie: str | None = None) -> None:
        self.ws = websocket.create_connection(url, header=[f"{k}: {v}" for k, v in (header or {}).items()],
                                              cookie=cookie, timeout=120)
        self.session = uuid.uuid4().hex

    def send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": [],
        }))
        return msg_id

    def replies(self, parent: str, until: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Messages answering ``parent`` until one of type ``until`` (or the timeout)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        self.ws.settimeout(1)
        while time.monotonic() < deadline:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != parent:
                continue
            got.append(msg)
            if msg["header"]["msg_type"] == until:
                return got
        return got

    def execute(self, code: str, timeout: float = 120) -> str:
        msg_id = self.send("execute_request", {"code": code, "silent": False, "store_history": False,
                                               "user_expressions": {}, "allow_stdin": False})
        msgs = self.replies(msg_id, "execute_reply", timeout)
        errors = [m["content"] for m in msgs if m["header"]["msg_type"] == "error"]
        if errors:
            raise AssertionError(f"{errors[0]['ename']}: {errors[0]['evalue']}")
        return "".join(m["content"].get("text", "") for m in msgs if m["header"]["msg_type"] == "stream")

    def close(self) -> None:
        self.ws.close()


def kernel_id_in_page(html: str) -> str:
    m = re.search(r'"kernelId"\s*:\s*"([0-9a-f-]{36})"', html) or re.search(r"kernel_id\W+([0-9a-f-]{36})", html)
    if not m:
        raise AssertionError("no kernel id in the dashboard page")
    return m.group(1)


def page_html(page: str) -> str:
    """The HTML outputs in a Voila page (the dashboard's first view), as the page's script renders them."""
    outputs = re.findall(r'<script type="application/vnd.voila.cell-output\+json">(.*?)</script>', page, re.S)
    return " ".join(str(o.get("data", {}).get("text/html", "")) for o in map(json.loads, outputs))
