"""A development CA and the certificates it signs, made with the ``openssl`` command.

Keys are EC P-256. The CA is valid five years; server and client certificates one
year. Private keys go from openssl's stdout straight into files created 0600, so no
key is ever readable by others, not even for a moment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from mqttpush.errors import ConfigurationError

__all__ = [
    "CA_COMMON_NAME",
    "SERVER_NAMES",
    "create_ca",
    "create_client_certificate",
    "create_server_certificate",
    "openssl",
    "usable",
    "write_private",
]

CA_COMMON_NAME = "mqttpush development CA"
SERVER_NAMES = ("DNS:localhost", "DNS:mosquitto", "IP:127.0.0.1")
"""Subject alternative names of the server certificate: local runs and compose."""

_CA_DAYS = 5 * 365 + 1
_LEAF_DAYS = 365
_TIMEOUT = 60.0

# A config of our own, so that the distribution's openssl.cnf cannot add extensions
# (Debian's would make every `req -x509` certificate a CA).
_REQ_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ca
[dn]
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    """Run ``openssl`` with ``args`` and return its stdout.

    Raises:
        ConfigurationError: openssl is not installed, or it failed (with its stderr).
    """
    binary = shutil.which("openssl")
    if binary is None:
        raise ConfigurationError(
            "the openssl command is needed to create certificates: on Debian/Ubuntu run "
            "'apt-get install openssl'"
        )
    try:
        done = subprocess.run(  # noqa: S603 - fixed binary, arguments built here, no shell
            [binary, *args], input=stdin, capture_output=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"openssl {args[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()
        raise ConfigurationError(f"openssl {args[0]} failed ({done.returncode}): {stderr}")
    return done.stdout


def usable(cert: Path, key: Path, ca_cert: Path, *, days: int = 30) -> bool:
    """Whether a certificate can stay: it and its key exist, and ``ca_cert`` signed it.

    It must also stay valid for ``days`` more days, so ``secure init`` renews it in time.
    """
    if not (cert.exists() and key.exists()):
        return False
    try:
        openssl("x509", "-in", str(cert), "-noout", "-checkend", str(days * 86_400))
        openssl("verify", "-CAfile", str(ca_cert), str(cert))
    except ConfigurationError:
        return False
    return True


def create_ca(cert: Path, key: Path) -> None:
    """Write a new CA key and self-signed certificate (CN "mqttpush development CA")."""
    _new_key(key)
    with tempfile.TemporaryDirectory(prefix="mqttpush-ca-") as tmp:
        config = Path(tmp) / "req.cnf"
        config.write_text(_REQ_CONFIG)
        pem = openssl(
            "req", "-new", "-x509", "-config", str(config), "-key", str(key), "-sha256",
            "-days", str(_CA_DAYS), "-subj", _subject(CA_COMMON_NAME), "-utf8",
            "-set_serial", _serial(),
        )  # fmt: skip
    _write_public(cert, pem)


def create_server_certificate(cert: Path, key: Path, *, ca_cert: Path, ca_key: Path) -> None:
    """Write a broker key and certificate for localhost, ``mosquitto`` and 127.0.0.1."""
    extensions = _LEAF_EXTENSIONS.format(usage="serverAuth")
    extensions += f"subjectAltName = {', '.join(SERVER_NAMES)}\n"
    _create_leaf(cert, key, ca_cert, ca_key, subject=_subject("mosquitto"), extensions=extensions)


def create_client_certificate(
    cert: Path, key: Path, *, ca_cert: Path, ca_key: Path, common_name: str
) -> None:
    """Write a client key and certificate whose CN is ``common_name`` (the user name)."""
    extensions = _LEAF_EXTENSIONS.format(usage="clientAuth")
    _create_leaf(cert, key, ca_cert, ca_key, subject=_subject(common_name), extensions=extensions)


def _create_leaf(
    cert: Path, key: Path, ca_cert: Path, ca_key: Path, *, subject: str, extensions: str
) -> None:
    _new_key(key)
    with tempfile.TemporaryDirectory(prefix="mqttpush-cert-") as tmp:
        config = Path(tmp) / "req.cnf"
        config.write_text(_REQ_CONFIG)
        extfile = Path(tmp) / "ext.cnf"
        extfile.write_text(extensions)
        request = openssl(
            "req", "-new", "-config", str(config), "-key", str(key),
            "-subj", subject, "-utf8",
        )  # fmt: skip
        pem = openssl(
            "x509", "-req", "-CA", str(ca_cert), "-CAkey", str(ca_key), "-sha256",
            "-days", str(_LEAF_DAYS), "-set_serial", _serial(), "-extfile", str(extfile),
            stdin=request,
        )  # fmt: skip
    _write_public(cert, pem)


def _new_key(path: Path) -> None:
    pem = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    write_private(path, pem)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable by its owner only (0600)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o644)


def _subject(common_name: str) -> str:
    # In -subj, a backslash escapes the next character; '/' and '+' cannot occur
    # (identity names are topic levels).
    escaped = common_name.replace("\\", "\\\\").replace("=", "\\=")
    return f"/CN={escaped}"


def _serial() -> str:
    return f"0x{secrets.randbits(120):x}"  # random, positive, below 20 bytes (RFC 5280)
