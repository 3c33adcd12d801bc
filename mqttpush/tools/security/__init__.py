"""Generated material for the "secure" deployment profile.

A development CA, a broker certificate, a client certificate and a password per
identity, the Mosquitto password file and an ACL that gives each identity only what
it needs, all written to one directory (``.run/secure`` by default) and never
committed. :func:`create_material` makes it; ``mosquitto-secure.conf`` uses it, and
:class:`SecureMosquitto` runs that configuration locally.
"""

from mqttpush.tools.security.acl import render_acl
from mqttpush.tools.security.broker import SecureMosquitto, client_settings, render_secure_config
from mqttpush.tools.security.identities import Identity, demo_identities
from mqttpush.tools.security.material import Material, create_material, rotate_password
from mqttpush.tools.security.passwords import (
    hash_password,
    new_password,
    password_file,
    verify_password,
)

__all__ = [
    "DEFAULT_SECURE_DIR",
    "Identity",
    "Material",
    "SecureMosquitto",
    "client_settings",
    "create_material",
    "demo_identities",
    "hash_password",
    "new_password",
    "password_file",
    "render_acl",
    "render_secure_config",
    "rotate_password",
    "verify_password",
]

DEFAULT_SECURE_DIR = ".run/secure"
"""Where the material goes by default, relative to the working directory."""
