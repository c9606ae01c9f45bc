# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSH key handling with the standard library only.

Generates Ed25519 key pairs (RFC 8032 arithmetic on the twisted Edwards curve)
and writes the private key in the OpenSSH ``openssh-key-v1`` format that
``ssh`` and ``ssh-keygen`` read; checks the shape of uploaded public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BASE_Y = 46316835694926478169428394003475163141307993866256225615783033603165251855960

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z

_BASE: Point = (_BASE_X, _BASE_Y, 1, (_BASE_X * _BASE_Y) % _P)
_IDENTITY: Point = (0, 1, 1, 0)

PUBLIC_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def _add(p: Point, q: Point) -> Point:
    """Point addition on edwards25519 (a = -1), complete for all inputs including doubling."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * _D * t1 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: Point) -> Point:
    result = _IDENTITY
    addend = point
    while scalar:
        if scalar & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        scalar >>= 1
    return result


def _encode(point: Point) -> bytes:
    x, y, z, _t = point
    z_inv = pow(z, _P - 2, _P)
    x = x * z_inv % _P
    y = y * z_inv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed25519_public_key(seed: bytes) -> bytes:
    """The 32-byte public key belonging to a 32-byte private seed."""
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return _encode(_multiply(scalar, _BASE))


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def public_key_line(public: bytes, comment: str = "") -> str:
    """An ``authorized_keys`` line for an Ed25519 public key."""
    blob = _ssh_string(b"ssh-ed25519") + _ssh_string(public)
    line = "ssh-ed25519 " + base64.b64encode(blob).decode("ascii")
    return f"{line} {comment}" if comment else line


def openssh_private_key(seed: bytes, public: bytes, comment: str = "") -> str:
    """An unencrypted Ed25519 private key in the OpenSSH format (``BEGIN OPENSSH PRIVATE KEY``)."""
    public_blob = _ssh_string(b"ssh-ed25519") + _ssh_string(public)
    check = os.urandom(4)
    private = (
        check
        + check
        + _ssh_string(b"ssh-ed25519")
        + _ssh_string(public)
        + _ssh_string(seed + public)
        + _ssh_string(comment.encode("utf-8"))
    )
    padding = bytes(range(1, 1 + (-len(private)) % 8))
    body = (
        b"openssh-key-v1\0"
        + _ssh_string(b"none")
        + _ssh_string(b"none")
        + _ssh_string(b"")
        + struct.pack(">I", 1)
        + _ssh_string(public_blob)
        + _ssh_string(private + padding)
    )
    encoded = base64.b64encode(body).decode("ascii")
    lines = [encoded[i : i + 70] for i in range(0, len(encoded), 70)]
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"


def generate_key_pair(comment: str = "") -> tuple[str, str]:
    """A new Ed25519 key pair as (public key line, OpenSSH private key text)."""
    seed = os.urandom(32)
    public = ed25519_public_key(seed)
    return public_key_line(public, comment), openssh_private_key(seed, public, comment)


def random_public_key(comment: str = "") -> str:
    """A well-formed Ed25519 public key line without a private key, for seeded accounts."""
    return public_key_line(os.urandom(32), comment)


def public_key_problem(text: str) -> str | None:
    """Why ``text`` is not an OpenSSH public key line, or None when it looks like one."""
    parts = text.strip().split()
    if len(parts) < 2:
        return "expected '<type> <base64 key> [comment]'"
    key_type, blob_text = parts[0], parts[1]
    if key_type not in PUBLIC_KEY_TYPES:
        return f"unsupported key type {key_type!r}"
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        return "the key data is not valid base64"
    if len(blob) < 4:
        return "the key data is truncated"
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != key_type.encode("ascii"):
        return f"the key data does not hold a {key_type} key"
    return None
