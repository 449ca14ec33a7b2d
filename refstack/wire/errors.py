"""The one exception the wire layer raises.

Every view in :mod:`refstack.wire` checks its input once, in its constructor, and
raises :class:`WireError` naming the field, the byte offset and the bound that was
broken.  Builders raise it too when asked to emit something the format cannot
carry (a port above 65535, options longer than 40 bytes); their offset is ``None``.
"""

from __future__ import annotations


class WireError(ValueError):
    """A malformed packet (or an impossible one asked of a builder).

    ``field`` is dotted, protocol first (``"tcp.data_offset"``, ``"ipv4.total_length"``);
    ``offset`` is the byte offset of that field in the buffer that was being parsed,
    or ``None`` for builder errors; ``reason`` says which bound was broken.
    """

    __slots__ = ("field", "offset", "reason")

    def __init__(self, field: str, offset: int | None, reason: str) -> None:
        self.field = field
        self.offset = offset
        self.reason = reason
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{field}{where}: {reason}")

    def __reduce__(self) -> tuple[type[WireError], tuple[str, int | None, str]]:
        return (type(self), (self.field, self.offset, self.reason))


def check_range(field: str, value: int, top: int) -> None:
    """Builder guard: ``value`` must fit ``0..top`` (raise :class:`WireError` otherwise)."""
    if not 0 <= value <= top:
        raise WireError(field, None, f"{value} is outside 0..{top}")
