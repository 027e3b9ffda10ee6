"""The app as a WSGI application, for a production server with several worker processes:

    gunicorn --workers 4 --timeout 120 --bind 127.0.0.1:8050 'llmroofline.app.wsgi:server'

(`llmroofline app --workers 4` starts the same). Each worker is a process: a heavy request holds
one worker, the others keep answering, and a request that runs past the timeout is stopped
without touching the rest. The Host check answers the names in LLMROOFLINE_ALLOW_HOSTS
(comma-separated) besides localhost and the address in LLMROOFLINE_HOST (default 127.0.0.1).
"""

from __future__ import annotations

import os

from .server import create_app

server = create_app(bind_host=os.environ.get("LLMROOFLINE_HOST", "127.0.0.1"),
                    allow_hosts=tuple(h for h in os.environ.get("LLMROOFLINE_ALLOW_HOSTS", "").split(",") if h)).server
