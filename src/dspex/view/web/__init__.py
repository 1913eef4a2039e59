"""``dspex ui``: a small local web app over a ResultStore.

    >>> from dspex import ResultStore
    >>> from dspex.view.web import create_app
    >>> app = create_app(ResultStore.open("memory://"))

Pages use the same HTML renderers as notebooks; ``/api/...`` serves JSON. See
``docs/viewer.md``.
"""

from dspex.extras import require

require("starlette", "ui", "the web UI (dspex ui)")
require("uvicorn", "ui", "the web UI (dspex ui)")

from dspex.view.web.app import create_app  # noqa: E402 - after the extra is known
from dspex.view.web.serve import check_bind, is_loopback, serve  # noqa: E402

__all__ = ["check_bind", "create_app", "is_loopback", "serve"]
