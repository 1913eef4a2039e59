"""Entry point of a process worker: ``python -m dspex.workers._process_main``.

The protocol runs over the worker's original stdin and stdout; stdout is then pointed at
stderr and stdin at /dev/null, so that what the program prints cannot corrupt a frame.
Messages from the pool: ``("init", name, sys_path, initializer_blob)``, then
``("task", task_id, job_id, fn_blob_or_None, item_blob)`` or ``("stop",)``. Replies:
``("hello", pid)``, ``("ready",)`` or ``("init_failed", error)``, then per task
``("result", task_id, value_blob)`` or ``("error", task_id, error, exception_blob)``.
A ``BaseException`` from the function (``SystemExit``) ends the process: the pool
reports the item as crashed.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from dspex.workers._remote import Executor, initialize
from dspex.workers._wire import error_dict, read_frame, write_frame


def _protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    incoming = os.fdopen(os.dup(0), "rb")
    outgoing = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout.flush()
    os.dup2(2, 1)
    return incoming, outgoing


def main() -> int:
    incoming, outgoing = _protocol_streams()
    write_frame(outgoing, ("hello", os.getpid()))
    try:
        _, name, parent_path, init_blob = read_frame(incoming)
        initialize(name, parent_path, init_blob)
    except EOFError:
        return 0
    except BaseException as exc:  # noqa: B036, BLE001 - the pool reports it as a start-up failure
        write_frame(outgoing, ("init_failed", error_dict(exc)))
        return 1
    write_frame(outgoing, ("ready",))
    executor = Executor()
    while True:
        try:
            message = read_frame(incoming)
        except EOFError:
            return 0  # the pool went away
        if message[0] == "stop":
            return 0
        _, task_id, job_id, fn_blob, item_blob = message
        write_frame(outgoing, executor.run(task_id, job_id, fn_blob, item_blob))


if __name__ == "__main__":
    sys.exit(main())
