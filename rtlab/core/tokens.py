"""Signed tokens that say who a user is, checked during the handshake.

A token is ``PAYLOAD.SIGNATURE``, both base64url without padding: the payload is
JSON ``{"sub": user, "exp": unix time}`` and the signature is its HMAC-SHA256
under the server's secret. Anyone can read a token; only the secret's holder can
make one, and changing one byte breaks its signature.

An instructor's token also says ``"role": "instructor"`` (``rtlab token --role
instructor``); a token without a role, as every token made before roles, is a student's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import NamedTuple

ROLES = ("student", "instructor")  # the first is what a token without a role is


class Claims(NamedTuple):
    """What a valid token says: who, and as what."""

    user: str
    role: str


class TokenError(ValueError):
    """A token that proves nothing; the message says why (for the 401 answer)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue(secret: str, user: str, ttl: float, now: float, role: str = ROLES[0]) -> str:
    """A token for ``user``, valid for ``ttl`` seconds from ``now``, in ``role``."""
    if not secret:
        raise ValueError("the secret must not be empty")
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    claims: dict[str, object] = {"sub": user, "exp": int(now + ttl)}
    if role != ROLES[0]:
        claims["role"] = role
    body = json.dumps(claims, separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: str, token: str, now: float) -> str:
    """The user a valid token names; :class:`TokenError` for anything else."""
    return verify_claims(secret, token, now).user


def verify_claims(secret: str, token: str, now: float) -> Claims:
    """The user and role a valid token names; :class:`TokenError` for anything else."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise TokenError("malformed token: expected PAYLOAD.SIGNATURE")
    if not token.isascii():  # hmac.compare_digest raises TypeError for other text
        raise TokenError("malformed token: tokens are ASCII (base64url and a dot)")
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        raise TokenError("bad signature: the token was not made with this server's secret")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise TokenError("malformed token: its payload is not base64url JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed token: its payload is not a JSON object")
    user, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(user, str) or not user or type(expires) is not int:
        raise TokenError("malformed token: it needs a user (sub) and an expiry (exp)")
    role = claims.get("role", ROLES[0])
    if role not in ROLES:
        raise TokenError(f"malformed token: unknown role {str(role)[:20]!r}")
    if now >= expires:
        raise TokenError(f"expired {int(now - expires)} s ago")
    return Claims(user, role)
