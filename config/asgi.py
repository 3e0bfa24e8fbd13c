"""ASGI entry point: `daphne config.asgi:application` serves HTTP and websockets."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set up Django before importing anything that imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from sessions_app.routing import websocket_urlpatterns  # noqa: E402

if os.environ.get("ENSEMBLE_BENCH_FLOOR") == "1":
    # `make bench` compares the live room with a bare relay served by these
    # same processes and channel layer (its floor). Only the benchmark's own
    # servers set this variable, so a deployment never routes the relay.
    from bench.floor import websocket_urlpatterns as floor_urlpatterns

    websocket_urlpatterns = [*websocket_urlpatterns, *floor_urlpatterns]

# The objects of start-up (Django, the URL map, templates) live as long as the
# process: the collector need never look at them again. Young objects are
# collected in batches 30 times larger than CPython's 700, as a crowd of
# connections arriving together keeps many: every collection holds up every
# room of the process. (A valid note leaves nothing to collect: NoteForm.)
gc.freeze()
gc.set_threshold(20_000, 20, 20)

if "twisted.internet.reactor" in sys.modules:
    # Served by daphne: SIGTERM closes live-room sockets with 1012, not silently.
    from twisted.internet import reactor

    from config.shutdown import on_daphne_shutdown

    on_daphne_shutdown(reactor)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A handshake from a foreign or missing Origin is refused before any
        # consumer runs (cross-site websocket hijacking).
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
