"""Mosquitto 2.x password files, written without ``mosquitto_passwd``.

Mosquitto 2.x stores ``username:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512
over the clear password with a 12-byte salt, giving 64 bytes, both in standard
base64 (the same bytes ``mosquitto_passwd -b`` writes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from mqttpush.address import check_level
from mqttpush.errors import ConfigurationError

__all__ = [
    "hash_password",
    "new_password",
    "parse_password_file",
    "password_file",
    "verify_password",
]

_SALT_BYTES = 12
_HASH_BYTES = 64
_DIGEST = "sha512"
_MAX_ITERATIONS = 10_000_000  # far above any sane cost, a bound on a forged file's cost


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """Return ``password`` hashed in Mosquitto's ``$7$`` (PBKDF2-SHA512) format.

    Args:
        password: The clear password.
        salt: 12 bytes of salt; random when omitted (pass one only for tests).
        iterations: PBKDF2 iterations; 101 is ``mosquitto_passwd``'s default.

    Raises:
        ConfigurationError: The salt is not 12 bytes, or ``iterations`` is out of range.
    """
    if salt is None:
        salt = secrets.token_bytes(_SALT_BYTES)
    if len(salt) != _SALT_BYTES:
        raise ConfigurationError(f"a Mosquitto salt is {_SALT_BYTES} bytes, not {len(salt)}")
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ConfigurationError(f"iterations must be 1 to {_MAX_ITERATIONS}, not {iterations}")
    digest = hashlib.pbkdf2_hmac(_DIGEST, password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``encoded`` (a ``$7$`` hash) is the hash of ``password``.

    Anything that is not a well-formed ``$7$`` hash verifies nothing.
    """
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7":  # noqa: PLR2004 - "", "7", n, salt, hash
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return False
    if len(salt) != _SALT_BYTES or not 1 <= iterations <= _MAX_ITERATIONS:
        return False
    digest = hashlib.pbkdf2_hmac(_DIGEST, password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


def password_file(entries: dict[str, str]) -> str:
    """Return the text of a Mosquitto ``password_file``.

    Args:
        entries: User name to its ``$7$`` hash (from :func:`hash_password`), in the
            order the lines should have.

    Raises:
        InvalidAddressError: A user name is not a valid topic level (so it could not
            appear in the ACL either, and a ``:`` or newline would corrupt the file).
        ConfigurationError: A user name contains ``:``.
    """
    lines = []
    for name, encoded in entries.items():
        check_level(name, "user name")
        if ":" in name:
            raise ConfigurationError(f"user name {name!r}: ':' cannot appear in a password file")
        lines.append(f"{name}:{encoded}\n")
    return "".join(lines)


def parse_password_file(text: str) -> dict[str, str]:
    """Return user name to hash from the text of a Mosquitto password file."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, encoded = line.partition(":")
        if sep and name and not line.startswith("#"):
            entries[name] = encoded.strip()
    return entries


def new_password() -> str:
    """Return a fresh random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
