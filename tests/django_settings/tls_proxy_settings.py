"""The legacy settings behind a TLS-terminating proxy (tests/tls_proxy.rs): what
FERROCHAT_SECURE_PROXY_SSL_HEADER, FERROCHAT_USE_X_FORWARDED_HOST and the two
FERROCHAT_*_COOKIE_SECURE variables say to ferrochat, said to Django."""

from chat_project.settings import *  # noqa: F401,F403

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
