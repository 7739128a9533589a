"""Protobuf wire format for OTLP's common messages (``AnyValue``, ``KeyValue``), written by hand.

Every function returns the bytes ``SerializeToString()`` would give for the same message built the
way the SDK's encoder (``opentelemetry.exporter.otlp.proto.common``) builds it: fields in number
order, proto3 defaults omitted, the ``AnyValue`` oneof always written once set.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

_SMALL: Final = tuple(bytes((n,)) for n in range(128))
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64: Final = (1 << 64) - 1

pack_fixed64: Final = struct.Struct("<Q").pack
pack_fixed32: Final = struct.Struct("<I").pack
pack_double: Final = struct.Struct("<d").pack

# AnyValue's oneof tags (string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7).
_TRUE: Final = b"\x10\x01"
_FALSE: Final = b"\x10\x00"
_INT: Final = b"\x18"
_DOUBLE: Final = b"\x21"


def varint(value: int) -> bytes:
    """An unsigned varint (negative values as their 64-bit two's complement)."""
    if 0 <= value < 128:
        return _SMALL[value]
    # Two and three bytes (offsets, sizes, lengths) without the loop.
    if 0 < value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if 0 < value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    value &= _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 128 else varint(size)) + payload


def any_value(value: object) -> bytes:
    """The body of an ``AnyValue`` holding ``value``.

    Raises:
        ValueError: an int outside int64 (as protobuf does).
        UnicodeEncodeError: a str that is not valid UTF-8 (as protobuf does).
        TypeError: a value of no OTLP type.
    """
    if value is None:
        return b""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, str):
        return field(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return _INT + varint(value)
    if isinstance(value, float):
        return _DOUBLE + pack_double(value)
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if isinstance(value, Sequence):
        return field(b"\x2a", b"".join([field(b"\x0a", any_value(item)) for item in value]))
    if isinstance(value, Mapping):
        return field(
            b"\x32",
            b"".join([field(b"\x0a", key_value(str(k), v)) for k, v in value.items()]),
        )
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def key_value(key: str, value: object) -> bytes:
    """The body of a ``KeyValue``."""
    if not isinstance(key, str):
        raise TypeError(f"attribute key {key!r} is not a str")
    encoded = field(b"\x0a", key.encode()) if key else b""
    return encoded + field(b"\x12", any_value(value))
