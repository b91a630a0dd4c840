"""A real OpenID Connect provider for the single sign-on tests: panva's node-oidc-provider
(OpenID Certified), run by Node.js from ``tests/oidc_idp`` with its development login and
consent pages.

It exists so siteflow's sign-on is tested against the protocol itself — discovery, signed ID
tokens from published keys, PKCE, userinfo, the RFC 9207 ``iss`` answer — rather than against
a mock of our own code. Its packages are installed on first use (``npm ci``, from the
committed lock file).

Usage::

    with OidcProvider(port, redirect_uri, {"li.na": Person(email="li.na@x", name="李娜")}) as idp:
        idp.issuer  # http://127.0.0.1:PORT
        idp.sign_in(http, authorize_url, "li.na")  # the provider's pages, as a person fills them
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel

HERE = Path(__file__).parent / "oidc_idp"
CLIENT_ID = "siteflow-test"
CLIENT_SECRET = "test-client-secret-4fd1c1"


class Person(BaseModel):
    email: str
    email_verified: bool = True
    name: str


def _installed() -> None:
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the single sign-on tests need Node.js and npm (Debian: apt-get install nodejs npm)"
        )
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=600
    )


class OidcProvider:
    def __init__(self, port: int, redirect_uri: str, people: dict[str, Person]) -> None:
        self.port = port
        self.redirect_uri = redirect_uri
        self.people = people
        self.issuer = f"http://127.0.0.1:{port}"
        self.log = b""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        _installed()
        env = dict(os.environ)
        env.update(
            IDP_PORT=str(self.port),
            IDP_CLIENT_ID=CLIENT_ID,
            IDP_CLIENT_SECRET=CLIENT_SECRET,
            IDP_REDIRECT_URI=self.redirect_uri,
            IDP_ACCOUNTS=json.dumps({k: v.model_dump() for k, v in self.people.items()}),
        )
        self._process = subprocess.Popen(
            ["node", "idp.mjs"], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the test OpenID provider did not start: {self.log.decode(errors='replace')}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            out, _ = self._process.communicate(timeout=10)
            self.log += out or b""
            self._process = None

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()

    def sign_in(self, http: httpx.Client, start: httpx.Response, login: str) -> httpx.Response:
        """Follow siteflow's redirect to the provider, fill its login and consent pages as a
        person would, and stop at the provider's redirect back: that response (303 to us)."""
        response = start
        for prompt, fields in (("login", {"login": login, "password": "any"}), ("consent", {})):
            response = self._follow(http, response)
            if self._back(response):
                return response  # the provider remembered this browser and asked nothing
            form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert form, f"no {prompt} form on the provider's page: {response.text[:500]}"
            response = http.post(urljoin(str(response.url), form.group(1)), data={"prompt": prompt, **fields})
        response = self._follow(http, response)
        assert self._back(response), response.text[:500]
        return response

    def _back(self, response: httpx.Response) -> bool:
        return response.status_code in (302, 303) and response.headers["location"].startswith(
            self.redirect_uri
        )

    def _follow(self, http: httpx.Client, response: httpx.Response) -> httpx.Response:
        """Redirects within the provider, up to its redirect back to siteflow."""
        while response.status_code in (302, 303) and not self._back(response):
            response = http.get(urljoin(str(response.url), response.headers["location"]))
        return response
