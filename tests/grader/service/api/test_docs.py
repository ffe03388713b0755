"""The API's documentation page works offline: /docs loads Swagger UI from the service itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_the_docs_page_loads_nothing_from_another_host(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    urls = re.findall(r"""url: *['"]([^'"]+)['"]""", page.text)
    assert assets and "/openapi.json" in urls
    for asset in assets + urls:
        assert asset.startswith("/"), f"{asset} is not the service's own"
        assert client.get(asset).status_code == 200, asset
    assert "https://" not in page.text and "cdn." not in page.text
    assert client.get("/docs/oauth2-redirect").status_code == 200
