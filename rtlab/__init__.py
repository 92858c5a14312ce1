"""rtlab: a hands-on course in WebSocket fundamentals that runs in JupyterLab.

The notebook-facing API in one place::

    import rtlab
    server = rtlab.start_server()      # the lab server, in the background
    server.echo_url                    # 'ws://127.0.0.1:PORT/echo'
    server.stop()
"""

from importlib.metadata import version

from rtlab.notebook.background import start_proxy, start_server
from rtlab.notebook.nested import run
from rtlab.notebook.page import page_url, show_page
from rtlab.notebook.wait import until, wait_until

__version__ = version("rtlab")
__all__ = [
    "__version__",
    "page_url",
    "run",
    "show_page",
    "start_proxy",
    "start_server",
    "until",
    "wait_until",
]
