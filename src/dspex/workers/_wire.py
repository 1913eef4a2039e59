"""Frames between a pool and its worker processes: an 8-byte length, then a pickle.

The envelope is a tuple of plain values pickled with the standard library (so that a
worker on another Python version can read it); functions, items and results travel
inside it as cloudpickle blobs, so one that does not load fails alone.
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

from dspex.model import ErrorInfo

__all__ = ["error_dict", "read_frame", "write_frame"]

_HEADER = struct.Struct("!Q")
_PROTOCOL = 4  # readable by every Python dspex supports


def write_frame(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[Any, ...]:
    """The next message; EOFError when the other side closed the pipe."""
    header = _read_exact(stream, _HEADER.size)
    (length,) = _HEADER.unpack(header)
    message = pickle.loads(_read_exact(stream, length))
    if not isinstance(message, tuple) or not message:
        raise ValueError(f"malformed worker message {message!r:.80}")
    return message


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("worker pipe closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def error_dict(exc: BaseException) -> dict[str, str]:
    """An exception as plain data (ErrorInfo's fields) for the envelope."""
    return ErrorInfo.from_exception(exc).model_dump(mode="json")
