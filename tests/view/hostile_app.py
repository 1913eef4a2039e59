"""The server of ``dspex ui`` over a test app, for what the real pages do rarely: a request
that runs long (``/slow``), a big response (``/big``). Run as a script:

    python tests/view/hostile_app.py PORT [MAX_CONNECTIONS HEADER KEEP_ALIVE SEND]
"""

from __future__ import annotations

import sys
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dspex.view.web._limits import Limits
from dspex.view.web._server import run
from dspex.view.web.serve import _sigterm_as_exit, bind, leave_now


def home(request: Request) -> Response:
    return PlainTextResponse("ok")


def slow(request: Request) -> Response:
    time.sleep(float(request.query_params.get("seconds", "30")))
    return PlainTextResponse("slow")


def big(request: Request) -> Response:
    return Response(b"x" * 20_000_000, media_type="application/octet-stream")


def main() -> None:
    port = int(sys.argv[1])
    numbers = [float(x) for x in sys.argv[2:6]]
    limits = Limits(*([int(numbers[0])] + numbers[1:])) if numbers else Limits()
    app = Starlette(routes=[Route("/", home), Route("/slow", slow), Route("/big", big)])
    try:
        with _sigterm_as_exit():
            run(app, bind("127.0.0.1", port), limits, log_level="warning")
    except (SystemExit, KeyboardInterrupt) as stop:
        leave_now(stop.code if isinstance(stop, SystemExit) else 130)


if __name__ == "__main__":
    main()
