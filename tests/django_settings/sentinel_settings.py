"""Test-only settings: the legacy app's settings with a channel layer behind Redis Sentinel.

The legacy settings.py builds CHANNEL_LAYERS from REDIS_URL only; a deployment behind Sentinel
configures channels_redis with a {"sentinels": [...], "master_name": ...} host instead. The
sentinel test copies this module into the legacy project (never editing the legacy app) and
points DJANGO_SETTINGS_MODULE at it.

TEST_SENTINELS: "host:port,host:port,..."; TEST_SENTINEL_MASTER: the master's name.
"""

import os

from chat_project.settings import *  # noqa: F401,F403

_sentinels = [
    (host, int(port))
    for host, port in (
        entry.rsplit(":", 1) for entry in os.environ["TEST_SENTINELS"].split(",") if entry
    )
]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "sentinels": _sentinels,
                    "master_name": os.environ["TEST_SENTINEL_MASTER"],
                    "db": 0,
                }
            ],
        },
    }
}
