"""Cross-site request forgery protection for the UI's few writes: a signed double-submit token.

A page that offers a write sets a cookie holding a token and puts the
same token in the form; a write is accepted only when the form's token
equals the cookie's and carries a valid HMAC under a secret made fresh
for each server process (so a token from another run, or one a page
made up, is refused). Another site can make the browser send the cookie,
but it cannot read it to copy it into the form. On top of that, a request
whose ``Origin`` header names another host is refused outright, and the
cookie is ``SameSite=Strict``.

>>> guard = CsrfGuard()
>>> token = guard.new_token()
>>> guard.valid(token, token), guard.valid(token, guard.new_token())
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

#: The cookie and the form field that carry the token.
COOKIE = "modelshelf_csrf"
FIELD = "csrf_token"


class CsrfGuard:
    """Makes and checks tokens under a secret that lives as long as the process."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def new_token(self) -> str:
        """A fresh token: a random nonce and its HMAC."""
        nonce = secrets.token_hex(16)
        return f"{nonce}.{self._mac(nonce)}"

    def signed(self, token: str | None) -> bool:
        """Whether ``token`` was made by this process."""
        if not token or token.count(".") != 1:
            return False
        nonce, mac = token.split(".")
        if not nonce.isascii() or not mac.isascii():
            return False
        return hmac.compare_digest(mac, self._mac(nonce))

    def valid(self, cookie: str | None, submitted: str | None) -> bool:
        """Whether a write may proceed: the form repeats the cookie's token, and the token is ours."""
        if not cookie or not submitted:
            return False
        return hmac.compare_digest(cookie, submitted) and self.signed(cookie)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether an ``Origin`` header (absent: true, old browsers send none) names the host the request went to."""
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()
