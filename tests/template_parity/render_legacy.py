"""Render page states with the real legacy Django app, for tests/template_parity.rs.

Reads a JSON object from stdin:

    {"cases": [CASE, ...]}

where CASE is

    {
      "id": "login_failed",            # any unique name
      "view": "index" | "room" | "login" | "signup",
      "method": "GET" | "POST",
      "path": "/login/?next=/chat/x/", # request path with query string
      "post": {"field": "value"},      # POST data (form-encoded by the test client)
      "user": "alice" | null,          # logged-in user (must be in "users")
      "users": ["alice", ...],          # users to create first (password "pw-not-used-1")
      "rooms": ["lobby", ...],          # rooms to create first
      "messages": [{"id": 1, "room": "lobby", "username": "alice",
                    "content": "hi", "timestamp": "2026-01-01T12:00:00.123456+00:00"}],
      "ferrochat_html": "<!DOCTYPE html>..."  # the page ferrochat rendered, normalized here too
    }

plus optional "dates": [{"timestamp": ISO, "format": F | null}] and "json_scripts":
[{"value": V, "id": ID | null}], and writes to stdout

    {"results": {ID: {"status": 200, "django": [LINE...], "ferrochat": [LINE...],
                      "django_html": "..."}},
     "dates": ["{{ value|date:format }}" output...],
     "json_scripts": ["{{ value|json_script:id }}" output...]}

LINE being one normalized HTML token (see normalize()).

Every case calls the real legacy view (chatapp.views / LoginView) through RequestFactory on an
in-memory SQLite database migrated with the legacy migrations; each case runs in a transaction that
is rolled back, so cases do not see each other's rows. The legacy project is copied to a temporary
directory first so that nothing is written next to the vendored copy.
"""

import json
import os
import shutil
import sys
import tempfile
from html.parser import HTMLParser

CSRF_MASK = "<csrf-token>"


class Normalizer(HTMLParser):
    """One line per start tag (attributes sorted, CSRF values masked), end tag and text run.

    Text keeps entity and character references as written (convert_charrefs=False), so
    `&#x27;` and `&#39;` differ; whitespace-only text between elements is dropped and
    other text is trimmed.
    """

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.lines = []
        self.text = []

    def flush(self):
        text = "".join(self.text).strip()
        self.text = []
        if text:
            self.lines.append("text " + json.dumps(text, ensure_ascii=False))

    def handle_starttag(self, tag, attrs):
        self.flush()
        masked = []
        is_csrf = ("name", "csrfmiddlewaretoken") in attrs
        for name, value in attrs:
            if is_csrf and name == "value":
                value = CSRF_MASK
            masked.append((name, value))
        rendered = " ".join(
            name if value is None else f"{name}={json.dumps(value, ensure_ascii=False)}"
            for name, value in sorted(masked, key=lambda item: (item[0], item[1] or ""))
        )
        self.lines.append(f"<{tag}{' ' if rendered else ''}{rendered}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        self.flush()
        self.lines.append(f"</{tag}>")

    def handle_data(self, data):
        self.text.append(data)

    def handle_entityref(self, name):
        self.text.append(f"&{name};")

    def handle_charref(self, name):
        self.text.append(f"&#{name};")

    def handle_decl(self, decl):
        self.flush()
        self.lines.append(f"<!{decl}>")

    def handle_comment(self, data):
        self.flush()
        self.lines.append(f"<!--{data}-->")


def normalize(html):
    parser = Normalizer()
    parser.feed(html)
    parser.close()
    parser.flush()
    return parser.lines


def setup_django():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.environ.get("LEGACY_PROJECT") or os.path.normpath(
        os.path.join(here, "..", "..", "vendor", "legacy-django", "chat_project")
    )
    if not os.path.isfile(os.path.join(source, "manage.py")):
        sys.exit(f"legacy project not found at {source}")
    workdir = tempfile.mkdtemp(prefix="ferrochat-parity-")
    project = os.path.join(workdir, "chat_project")
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    sys.path.insert(0, project)
    os.environ["DJANGO_SETTINGS_MODULE"] = "chat_project.settings"
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
    os.environ["CHANNEL_LAYER"] = "memory"
    os.environ["DJANGO_DEBUG"] = "1"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    sys.dont_write_bytecode = True

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return workdir


def render_case(case):
    from datetime import datetime

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.auth.views import LoginView
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.test import RequestFactory

    from chatapp import views
    from chatapp.models import Message, Room

    User = get_user_model()
    with transaction.atomic():
        users = {}
        for username in case.get("users", []):
            users[username] = User.objects.create_user(username, password="pw-not-used-1")
        rooms = {}
        for name in case.get("rooms", []):
            rooms[name] = Room.objects.create(name=name)
        for message in case.get("messages", []):
            room = rooms.get(message["room"]) or Room.objects.get_or_create(name=message["room"])[0]
            rooms[message["room"]] = room
            created = Message.objects.create(
                id=message["id"],
                room=room,
                user=users[message["username"]],
                content=message["content"],
            )
            # auto_now_add ignores a given value: set the stored time afterwards.
            Message.objects.filter(pk=created.pk).update(
                timestamp=datetime.fromisoformat(message["timestamp"])
            )

        factory = RequestFactory()
        if case.get("method", "GET") == "POST":
            request = factory.post(case["path"], case.get("post", {}))
        else:
            request = factory.get(case["path"])
        # The views are called directly (no middleware); LoginView is csrf_protect'ed.
        request._dont_enforce_csrf_checks = True
        request.session = SessionStore()
        username = case.get("user")
        request.user = users[username] if username else AnonymousUser()

        view = case["view"]
        if view == "index":
            response = views.index(request)
        elif view == "room":
            response = views.room(request, case["room_name"])
        elif view == "login":
            response = LoginView.as_view(template_name="registration/login.html")(request)
        elif view == "signup":
            response = views.signup(request)
        else:
            raise ValueError(f"unknown view {view!r}")
        if hasattr(response, "render"):
            response.render()
        html = response.content.decode("utf-8")
        transaction.set_rollback(True)
    return response.status_code, html


def render_date(case):
    """`{{ value|date:format }}` (or `|date` without a format) in an autoescaping template."""
    from datetime import datetime

    from django.template import Context, Template

    value = datetime.fromisoformat(case["timestamp"])
    if case.get("format") is None:
        return Template("{{ value|date }}").render(Context({"value": value}))
    return Template("{{ value|date:format }}").render(
        Context({"value": value, "format": case["format"]})
    )


def render_json_script(case):
    from django.template import Context, Template

    if case.get("id") is None:
        return Template("{{ value|json_script }}").render(Context({"value": case["value"]}))
    return Template("{{ value|json_script:id }}").render(
        Context({"value": case["value"], "id": case["id"]})
    )


def main():
    request = json.load(sys.stdin)
    workdir = setup_django()
    results = {}
    try:
        for case in request["cases"]:
            status, html = render_case(case)
            results[case["id"]] = {
                "status": status,
                "django_html": html,
                "django": normalize(html),
                "ferrochat": normalize(case.get("ferrochat_html", "")),
            }
        dates = [render_date(case) for case in request.get("dates", [])]
        json_scripts = [render_json_script(case) for case in request.get("json_scripts", [])]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    json.dump(
        {"results": results, "dates": dates, "json_scripts": json_scripts},
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == "__main__":
    main()
