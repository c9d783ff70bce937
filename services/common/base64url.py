"""Unpadded base64url as page tokens use it, decoded strictly: one text for one byte string.

Python's decoder ignores the unused low bits of the last character and reads ``+`` and ``/`` as
``-`` and ``_``, so several texts decode to the same bytes. Page tokens promise that any changed
character is refused, so decoding here accepts only the exact text ``encode`` produces.
"""

from __future__ import annotations

import base64
import binascii


def encode(data: bytes) -> str:
    """``data`` as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str) -> bytes:
    """The bytes of a text ``encode`` produced; ValueError for any other text."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError("not unpadded base64url") from error
    if encode(data) != text:
        raise ValueError("not the canonical base64url of its bytes")
    return data
