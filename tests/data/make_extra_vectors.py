"""Extra vectors for ferrochat's `django` module, produced by the legacy app's real Django.

Run from the repository root with the legacy venv:

    .legacy-venv/bin/python tests/data/make_extra_vectors.py > tests/data/django_extra_vectors.json

Everything here is deterministic (no random salts, masks or keys).
"""

import json
import sys

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="django-insecure-test-vectors-0123456789abcdefghijklmnopqrstuvwxyz",
    DEBUG=False,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    AUTH_PASSWORD_VALIDATORS=[
        {"NAME": "django.contrib.auth.password_validation." + n}
        for n in (
            "UserAttributeSimilarityValidator",
            "MinimumLengthValidator",
            "CommonPasswordValidator",
            "NumericPasswordValidator",
        )
    ],
    USE_TZ=True,
    TIME_ZONE="UTC",
    ALLOWED_HOSTS=["*"],
    USE_I18N=True,
    LANGUAGE_CODE="en-us",
)
django.setup()

import datetime  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

from django.contrib.auth.forms import UserCreationForm  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.auth.password_validation import validate_password  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.middleware import csrf as mcsrf  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from django.utils.http import (  # noqa: E402
    http_date,
    is_same_domain,
    url_has_allowed_host_and_scheme,
)
from django.views.csrf import csrf_failure  # noqa: E402

call_command("migrate", verbosity=0)
rf = RequestFactory()
out = {"meta": {"django_version": django.get_version(), "python": sys.version.split()[0]}}

# --- CSRF failure page (django.views.csrf.csrf_failure, built-in template) -------------------
reasons = [
    mcsrf.REASON_NO_CSRF_COOKIE,
    mcsrf.REASON_NO_REFERER,
    mcsrf.REASON_CSRF_TOKEN_MISSING,
    "CSRF token from POST incorrect.",
    mcsrf.REASON_BAD_ORIGIN % "http://<evil>&\"'.example",
    "",
]
pages = []
for debug in (False, True):
    with override_settings(DEBUG=debug):
        for reason in reasons:
            resp = csrf_failure(rf.post("/x/"), reason=reason)
            pages.append(
                {
                    "debug": debug,
                    "reason": reason,
                    "status": resp.status_code,
                    "content_type": resp["Content-Type"],
                    "body": resp.content.decode(),
                }
            )
out["csrf_403_pages"] = pages

# --- CSRF Origin / Referer checks (CsrfViewMiddleware._origin_verified / _check_referer) -----
def origin_case(origin, host, secure, trusted):
    with override_settings(CSRF_TRUSTED_ORIGINS=trusted, ALLOWED_HOSTS=["*"]):
        mw = mcsrf.CsrfViewMiddleware(lambda r: None)
        req = rf.post("/x/", HTTP_ORIGIN=origin, HTTP_HOST=host, secure=secure)
        return {"origin": origin, "host": host, "secure": secure, "trusted": trusted,
                "verified": mw._origin_verified(req)}


def referer_case(referer, host, trusted):
    with override_settings(CSRF_TRUSTED_ORIGINS=trusted, ALLOWED_HOSTS=["*"]):
        mw = mcsrf.CsrfViewMiddleware(lambda r: None)
        extra = {"HTTP_HOST": host}
        if referer is not None:
            extra["HTTP_REFERER"] = referer
        req = rf.post("/x/", secure=True, **extra)
        try:
            mw._check_referer(req)
            reason = None
        except mcsrf.RejectRequest as e:
            reason = e.reason
        return {"referer": referer, "host": host, "trusted": trusted, "reject": reason}


out["csrf_origin"] = [
    origin_case("http://testserver", "testserver", False, []),
    origin_case("https://testserver", "testserver", False, []),
    origin_case("https://testserver", "testserver", True, []),
    origin_case("http://testserver:8000", "testserver:8000", False, []),
    origin_case("http://TESTSERVER", "testserver", False, []),
    origin_case("http://evil.example", "testserver", False, []),
    origin_case("null", "testserver", False, []),
    origin_case("https://chat.example.com", "testserver", True, ["https://chat.example.com"]),
    origin_case("https://sub.example.com", "testserver", True, ["https://*.example.com"]),
    origin_case("https://example.com", "testserver", True, ["https://*.example.com"]),
    origin_case("http://sub.example.com", "testserver", False, ["https://*.example.com"]),
    origin_case("https://evilexample.com", "testserver", True, ["https://*.example.com"]),
    origin_case("https://a.b.example.com:8443", "testserver", True, ["https://*.example.com:8443"]),
    origin_case("https://[::1", "testserver", True, ["https://*.example.com"]),
]
out["csrf_referer"] = [
    referer_case(None, "testserver", []),
    referer_case("https://testserver/page", "testserver", []),
    referer_case("http://testserver/page", "testserver", []),
    referer_case("https://evil.example/page", "testserver", []),
    referer_case("https://testserver:8443/p", "testserver:8443", []),
    referer_case("https://testserver/p", "testserver:8443", []),
    referer_case("//testserver/p", "testserver", []),
    referer_case("https:///p", "testserver", []),
    referer_case("not a url", "testserver", []),
    referer_case("https://[::1/p", "testserver", []),
    referer_case("https://a.example.com/p", "testserver", ["https://*.example.com"]),
    referer_case("https://example.com/p", "testserver", ["https://*.example.com"]),
    referer_case("https://chat.example.com/p", "testserver", ["https://chat.example.com"]),
    referer_case("https://other.example.com/p", "testserver", ["https://chat.example.com"]),
    referer_case("HTTPS://testserver/p?q#f", "testserver", []),
    referer_case("https://evil.example/a;b?c=1#d", "testserver", []),
]

# --- url_has_allowed_host_and_scheme / is_same_domain / urlparse ----------------------------
urls = [
    "/chat/", "chat/", "https://evil.example/", "//evil.example", "///evil.example",
    "http://testserver/x", "https://testserver/x", "ftp://testserver/x", "/\\evil.example",
    "\\\\evil.example", "\\/evil.example", "/\\/evil.example", "javascript:alert(1)",
    "\x08/evil.example", "", " /chat/ ", "\t/chat/", "\u00a0/chat/", "\u200b/chat/",
    "/\t/evil.example", "/\n/evil.example", "http:///evil.example", "https:evil.example",
    "http:/testserver", "//testserver/x", "HTTP://testserver/x", "http://TESTSERVER/x",
    "http://testserver:80/x", "http://user:pw@testserver/x", "http://[::1]/", "http://[::1/",
    "http://evil.example\\@testserver/", "http://testserver\\@evil.example/", "/chat/?next=//evil",
    "mailto:a@b", "data:text/html,x", "/%2F%2Fevil.example", "/../../etc", "?q=1", "#frag",
    "\x00/x", "\x7f/x", "\u2028/x", "http://a\u2100b/", "http:\\\\evil.example",
    "  //evil.example", "\u3000/chat/", "1http://evil.example", "ht\ttp://evil.example",
    "http://testserver/x\u0000", "https://testserver", "//", "/", ".", "http://",
]
out["url_has_allowed_host_and_scheme"] = [
    {"url": u, "allowed_hosts": ["testserver"], "require_https": rh,
     "result": url_has_allowed_host_and_scheme(u, {"testserver"}, require_https=rh)}
    for u in urls for rh in (False, True)
]
out["url_has_allowed_host_and_scheme"] += [
    {"url": "http://testserver:8000/x", "allowed_hosts": ["testserver:8000"], "require_https": False,
     "result": url_has_allowed_host_and_scheme("http://testserver:8000/x", {"testserver:8000"})},
    {"url": "http://testserver/x", "allowed_hosts": [], "require_https": False,
     "result": url_has_allowed_host_and_scheme("http://testserver/x", set())},
]
out["is_same_domain"] = [
    {"host": h, "pattern": p, "result": is_same_domain(h, p)}
    for h, p in [
        ("example.com", ".example.com"), ("foo.example.com", ".Example.com"),
        ("fooexample.com", ".example.com"), ("example.com:8000", "example.com:8000"),
        ("EXAMPLE.com", "example.com"), ("example.com", ""), ("", "."), ("a.b", ".B"),
        ("example.com", "EXAMPLE.COM"), ("x.example.com:443", ".example.com:443"),
    ]
]
parses = []
for u in urls + ["https://user@host:8000/a/b;p?q=1#frag", "http://[v1.x]/", "http://[127.0.0.1]/",
                 "http://[fe80::1%25eth0]/", "http://[fe80::1%eth0]/", "tel:+1;ext=2", "a;b/c;d",
                 "sip:x;y", "HTTPS://H/;", "svn+ssh:x", "file:///etc/passwd", "x:"]:
    try:
        p = urlparse(u)
        parses.append({"url": u, "scheme": p.scheme, "netloc": p.netloc, "path": p.path,
                       "params": p.params, "query": p.query, "fragment": p.fragment,
                       "geturl": p.geturl()})
    except ValueError as e:
        parses.append({"url": u, "error": str(e)})
out["urlparse"] = parses

# --- usernames ------------------------------------------------------------------------------
User.objects.create_user("existing", password="x")
names = [
    "alice", "Alice.B-1+x@y_z", "\u00e9l\u00e8ve", "\u7528\u6237", "bad name", "bad/name",
    "trailingnewline\n", "", "a" * 150, "a" * 151, "a b" * 60, "a\x00b", "a" * 150 + "\x00",
    "  alice  ", "\ufb00" * 80, "\ufb00" * 150, "\ufb00" * 151, "\u2003", "\u216b",
    "\uff46\uff55\uff4c\uff4c", "a\nb", "x\u0301", "\u0939\u093f\u0928\u094d\u0926\u0940",
    "\u24b6", "a" * 149 + "\u00e9", "   ", "a\r", "\u0660\u0661", "_", "-.+@", "\u00bd",
    "a\u200bb", "\U0001d400", "\u00aa\u00ba", "\u02b0", "\u3005", "a\u00a0b", "\x1c", "\x1f\x1fok",
]
form_cases, model_cases = [], []
ufield = User._meta.get_field("username")
for n in names:
    f = UserCreationForm({"username": n, "password1": "a-Strong-pass-42", "password2": "a-Strong-pass-42"})
    f.is_valid()
    form_cases.append({"raw": n, "errors": list(f.errors.get("username", [])),
                       "cleaned": f.cleaned_data.get("username")})
    try:
        cleaned = ufield.clean(n, None)
        model_cases.append({"raw": n, "errors": [], "normalized": User.normalize_username(cleaned)})
    except ValidationError as e:
        model_cases.append({"raw": n, "errors": e.messages})
out["username_form"] = form_cases
out["username_model"] = model_cases

# --- password validators --------------------------------------------------------------------
users = [
    {"username": "alice", "email": "alice@example.com", "first_name": "Alice", "last_name": "Smith"},
    {"username": "carol", "email": "alice2@example.com", "first_name": "", "last_name": ""},
    {"username": "", "email": "", "first_name": "", "last_name": ""},
    {"username": "\u00c9milie", "email": "EMILIE@Example.COM", "first_name": "\u0130stanbul", "last_name": "O'Brien-Smith"},
]
passwords = [
    "alice", "password", "12345678", "short", "alice@example", "Xq7!mZ2#vB9$", "", " ", "x",
    "  PassWord \n", "\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
    "alicealicealice", "smithsmith", "example.com", "ecilaecila", "emilie2024", "istanbul!",
    "obriensmith", "a" * 100, "carol123", "alice2example", "\u0130STANBUL", "qwertyuiop",
    "iloveyou", "P@ssw0rd", "1234567890", "letmein1", "password1", "\u00e9milie\u00e9milie",
]
pv = []
for u in users:
    user = User(**u)
    for p in passwords:
        try:
            validate_password(p, user)
            msgs = []
        except ValidationError as e:
            msgs = e.messages
        pv.append({"user": u, "password": p, "messages": msgs})
out["password_validation"] = pv

# --- json.dumps, isoformat, http_date -------------------------------------------------------
values = [
    {"id": 1, "message": "hello", "username": "admin", "timestamp": "2026-11-24T04:36:42.485068+00:00"},
    {"id": 9007199254740993, "message": "h\u00e9llo \"w\" \\ / \u2713 \U0001f600 \x00\x1f\x7f\u2028\ud7ff\ue000\uffff",
     "username": "\u7528\u6237", "timestamp": "2024-01-01T12:00:00+00:00"},
    [1, -2, 0, 1.5, -0.0, 1e16, 1e-7, 123.456, None, True, False, [], {}, [[]], {"a": {}}],
    "\t\n\r\b\f",
    {"": "", "k": [1, {"x": None}]},
]
out["json_dumps"] = [
    {"value": v, "default": json.dumps(v), "compact": json.dumps(v, separators=(",", ":"))}
    for v in values
]
dts = [
    datetime.datetime(2026, 11, 24, 4, 36, 42, 485068, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 1, 1, 12, 0, 0, 0, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 1, 1, 12, 0, 0, 100000, tzinfo=datetime.timezone.utc),
    datetime.datetime(1, 1, 1, 0, 0, 0, 0, tzinfo=datetime.timezone.utc),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc),
]
out["isoformat"] = [
    {"unix_micros": (d - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1),
     "isoformat": d.isoformat()}
    for d in dts
]
out["http_date"] = [
    {"unix": t, "http_date": http_date(t)}
    for t in (0, 1, 951782400, 1704110400, 1796704836, 2147483647, 253402300799, -1)
]

json.dump(out, sys.stdout, indent=1, ensure_ascii=True)
sys.stdout.write("\n")
