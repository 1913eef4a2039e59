"""``dspex ui``: a small local web app over a ResultStore.

    >>> from dspex import ResultStore
    >>> from dspex.view.web import create_app
    >>> app = create_app(ResultStore.open("memory://"))

Pages use the same HTML renderers as notebooks; ``/api/...`` serves JSON. See
``docs/viewer.md``.
"""

from dspex.view.web.app import create_app
from dspex.view.web.serve import check_bind, is_loopback, serve

__all__ = ["check_bind", "create_app", "is_loopback", "serve"]
