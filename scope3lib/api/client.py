"""A client of the tenant's API for notebooks and scripts: ``connect()`` and the pages of a list.

In a JupyterLab server of the tenant's hub, ``connect()`` needs no argument: the hub sets ``SCOPE3_API_URL``
(the API service) and ``JUPYTERHUB_API_TOKEN`` (the analyst's own token, which carries their role's
``custom:scope3:*`` scopes). Elsewhere, pass the URL and an API key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

from ..config import TenantSettings
from ..errors import ConfigurationError, Scope3Error


class ApiError(Scope3Error):
    """The API refused a request; the message is its problem's detail."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())
        self.status, self.problem = status, problem


def connect(url: str | None = None, token: str | None = None, *, timeout: float = 60) -> httpx.Client:
    """An HTTP client of the tenant's API (``url``: SCOPE3_API_URL; ``token``: an API key, or
    JUPYTERHUB_API_TOKEN); every answer other than 2xx raises :class:`ApiError` naming the problem."""
    url = url or TenantSettings().api_url
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        raise ConfigurationError("no API to connect to: in the tenant's hub SCOPE3_API_URL and JUPYTERHUB_API_TOKEN "
                                 "are set for you; elsewhere pass connect(url, token) with an API key "
                                 "(`scope3 apikey create SLUG NAME --scope read`)")

    def raise_problem(response: httpx.Response) -> None:
        if response.is_success:
            return
        response.read()
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:300]}
        raise ApiError(response.status_code, problem)

    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                        event_hooks={"response": [raise_problem]})


def items(client: httpx.Client, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a list, page after page (following the ``Link: rel="next"`` header)."""
    response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    while True:
        yield from response.json()["items"]
        nxt = response.links.get("next", {}).get("url")
        if not nxt:
            return
        response = client.get(nxt)
