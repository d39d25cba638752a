"""Settings for bench/web.py's gunicorn: the project's own, serving bench.web's URL map (the
project's URLs plus a trivial view)."""

from emailsync.settings import *  # noqa: F403

ROOT_URLCONF = "bench.web"
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
