"""Swagger UI rendered by headless Chromium (Debian's `chromium`), offline: no page request leaves localhost.

Chromium's network log records every request with the network isolation key of the page it
was made for; the page's requests carry `http://127.0.0.1`, Chromium's own background ones
(update checks, sign-in) carry none or their own site. A `<script src="https://cdn...">`
in the page would be logged with the page's key, which this test refuses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.api.conftest import ApiMember

pytestmark = pytest.mark.broker

#: The lead's flags: without the background-networking ones this closed network refuses its connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def load_net_log(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # cut short: Chromium ends the events array only on a clean exit
        return json.loads(text.rstrip().rstrip(",") + "]}")


def page_requests(net_log: dict[str, Any], page_site: str) -> list[str]:
    """URLs of the requests Chromium made for pages of `page_site`, in order."""
    start_job = net_log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in net_log["events"]:
        params = event.get("params") or {}
        if (event["type"] == start_job and "url" in params
                and page_site in params.get("network_isolation_key", "").split(" ")):
            urls.append(params["url"])
    return urls


def test_swagger_ui_renders_offline_with_every_request_on_localhost(lab_member: ApiMember, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    net_log = tmp_path / "net-log.json"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}",
         "--virtual-time-budget=15000", "--dump-dom", f"{lab_member.url}/swagger"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # Rendered by Swagger UI's script from the document, not just the HTML shell.
    assert "E-Banking Balance API (balance-tui)" in dom
    for path in ("/api/Balance/balances", "/api/Balance/balances/{customerId}", "/api/Balance/metrics",
                 "/api/Balance/rebalancing-history", "/api/Balance/health"):
        assert f'data-path="{path}"' in dom, path

    requests = page_requests(load_net_log(net_log), "http://127.0.0.1")
    paths = {urlsplit(url).path for url in requests}
    assert {"/swagger", "/swagger/assets/swagger-ui-bundle.js", "/swagger/assets/swagger-ui.css",
            "/openapi.json"} <= paths, requests
    outside = [url for url in requests if urlsplit(url).hostname not in LOCAL_HOSTS]
    assert outside == [], f"the Swagger page asked for {outside}"
