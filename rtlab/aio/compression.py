"""permessage-deflate (RFC 7692) off, on, or on above a size threshold.

One option shape for the server and the client (``compression=``):

- ``None`` or ``"off"``: the extension is not negotiated; every frame goes as it is;
- ``"on"``: every message is compressed (threshold 0, what ``websockets`` does by default);
- an ``int`` ``N`` (or its digits, ``"1024"``): messages of ``N`` bytes or more are
  compressed, smaller ones go as they are, as the tutorial's Socket.IO server asks with
  ``perMessageDeflate: { threshold: 1024 }`` (Node's ``ws`` and Socket.IO v4 compress
  nothing unless ``perMessageDeflate`` is set).

``websockets`` has no threshold, so :class:`ThresholdDeflate` adds one. RFC 7692
lets a sender leave any message uncompressed: it clears RSV1 on that message's
first frame, and the peer's decoder passes the frame through untouched. Nothing
is fed to the compressor for such a message, and nothing to the peer's
decompressor either, so the two sliding windows (context takeover) stay in step.
"""

from __future__ import annotations

from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CONT, CTRL_OPCODES, Frame
from websockets.typing import ExtensionParameter

Compression = str | int | None  # None/"off", "on", or a threshold in bytes
DEFAULT_THRESHOLD = 1024  # the server's and client's default: see docs/protocol.md
# websockets' own defaults for the sliding windows and zlib's memory (memLevel).
WINDOW_BITS = 12
COMPRESS_SETTINGS = {"memLevel": 5}


def threshold(option: Compression | bool) -> int | None:
    """The smallest message, in bytes, that is compressed; ``None`` when compression is off.

    Raises ``ValueError`` for anything but ``None``, ``"off"``, ``"on"`` or a whole
    number of bytes (0 or more, as an ``int`` or a string of digits).
    """
    if option is None or option is False or option == "off":
        return None
    if option is True or option == "on":
        return 0
    if isinstance(option, str) and option.isdigit():
        return int(option)
    if type(option) is int and option >= 0:
        return option
    raise ValueError(
        f"compression must be 'off', 'on' or a threshold in bytes (0 or more), got {option!r}"
    )


class ThresholdDeflate(PerMessageDeflate):
    """permessage-deflate that sends messages under ``threshold`` bytes uncompressed.

    ``compressed`` and ``skipped`` count the messages sent each way.
    """

    def __init__(self, *args: Any, threshold: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threshold = threshold
        self.compressed = 0
        self.skipped = 0
        self._skipping = False  # the message being sent (its continuation frames too)

    @classmethod
    def like(cls, extension: PerMessageDeflate, threshold: int) -> ThresholdDeflate:
        """The same negotiated parameters as ``extension``, with a threshold."""
        return cls(
            extension.remote_no_context_takeover,
            extension.local_no_context_takeover,
            extension.remote_max_window_bits,
            extension.local_max_window_bits,
            extension.compress_settings,
            threshold=threshold,
        )

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in CTRL_OPCODES:
            return frame
        if frame.opcode is not CONT:  # a new message: its first frame decides
            self._skipping = len(frame.data) < self.threshold
            if self._skipping:
                self.skipped += 1
            else:
                self.compressed += 1
        if self._skipping:
            return frame  # RSV1 clear: the peer passes it through as it is
        return super().encode(frame)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, threshold={self.threshold})"


class ServerThresholdDeflateFactory(ServerPerMessageDeflateFactory):
    """The server's side of the negotiation, making :class:`ThresholdDeflate` extensions."""

    def __init__(self, threshold: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def process_request_params(
        self, params: Any, accepted_extensions: Any
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, extension = super().process_request_params(params, accepted_extensions)
        return response, ThresholdDeflate.like(extension, self.threshold)


class ClientThresholdDeflateFactory(ClientPerMessageDeflateFactory):
    """The client's side of the negotiation, making :class:`ThresholdDeflate` extensions."""

    def __init__(self, threshold: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def process_response_params(self, params: Any, accepted_extensions: Any) -> PerMessageDeflate:
        extension = super().process_response_params(params, accepted_extensions)
        return ThresholdDeflate.like(extension, self.threshold)


def server_options(option: Compression | bool) -> dict[str, Any]:
    """Keyword arguments for ``websockets``' ``serve()``: no extension, or ours."""
    limit = threshold(option)
    if limit is None:
        return {"compression": None}
    factory = ServerThresholdDeflateFactory(
        limit,
        server_max_window_bits=WINDOW_BITS,
        client_max_window_bits=WINDOW_BITS,
        compress_settings=dict(COMPRESS_SETTINGS),
    )
    return {"compression": None, "extensions": [factory]}


def client_options(option: Compression | bool) -> dict[str, Any]:
    """Keyword arguments for ``websockets``' ``connect()``: no extension offered, or ours."""
    limit = threshold(option)
    if limit is None:
        return {"compression": None}
    factory = ClientThresholdDeflateFactory(limit, compress_settings=dict(COMPRESS_SETTINGS))
    return {"compression": None, "extensions": [factory]}


def negotiated(extensions: list[Extension]) -> ThresholdDeflate | PerMessageDeflate | None:
    """The permessage-deflate extension among a connection's, if one was negotiated."""
    for extension in extensions:
        if isinstance(extension, PerMessageDeflate):
            return extension
    return None
