// The live room client (FERROCHAT_FRONTEND=live): plain JavaScript, no build step.
//
// Speaks ferrochat.v1 (docs/protocol.md): reconnects by itself with exponential backoff and
// jitter, resumes with ?after=<highest id seen>, keeps messages once each and in id order, shows
// who is in the room and who is typing. A server that does not select ferrochat.v1 (a Daphne
// node behind the same load balancer) gets the legacy protocol instead.
// User content goes through textContent only, never innerHTML.
(function () {
    'use strict';

    const PROTOCOL = 'ferrochat.v1';
    const BACKOFF_MIN_MS = 1000;
    const BACKOFF_MAX_MS = 30000;
    // A connection that stayed open this long was a good one: the backoff starts over.
    const STABLE_MS = 5000;
    const TYPING_SEND_EVERY_MS = 2000;
    // A typist is shown this long after their last typing frame (the server relays one per 2 s).
    const TYPING_SHOWN_MS = 4000;

    const roomName = JSON.parse(document.getElementById('room-name').textContent);
    const username = JSON.parse(document.getElementById('username').textContent);

    const chatLog = document.getElementById('chat-log');
    const messageInput = document.getElementById('chat-message-input');
    const submitButton = document.getElementById('chat-message-submit');
    const statusEl = document.getElementById('chat-status');
    const membersEl = document.getElementById('chat-members');
    const membersRow = membersEl.parentElement;
    const typingEl = document.getElementById('chat-typing');

    // ---------------------------------------------------------------------------------------
    // The log: one element per message id, in id order.

    const messages = new Map();  // id -> element
    let lastId = 0;              // the highest id seen (0: none yet)

    function parseId(value) {
        const id = typeof value === 'number' ? value : Number(value);
        return Number.isSafeInteger(id) && id >= 0 ? id : null;
    }

    // Where an element sorts in the log: its message id, or data-order for notices.
    function orderOf(el) {
        const raw = el.dataset.order !== undefined ? el.dataset.order : el.dataset.id;
        const n = Number(raw);
        return Number.isFinite(n) ? n : -Infinity;
    }

    for (const el of chatLog.querySelectorAll('.message')) {
        const id = parseId(el.dataset.id);
        if (id !== null) {
            messages.set(id, el);
            lastId = Math.max(lastId, id);
        }
    }

    function nearBottom() {
        return chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 48;
    }

    function scrollToBottom() {
        chatLog.scrollTop = chatLog.scrollHeight;
    }

    // "2024-01-10T12:34:56.123456+00:00" -> "12:34" (server time, UTC), as the history shows it.
    function formatTime(iso) {
        const match = /T(\d{2}:\d{2})/.exec(typeof iso === 'string' ? iso : '');
        return match ? match[1] : '';
    }

    // Same markup as the server-side history in the template.
    function messageElement(id, data) {
        const div = document.createElement('div');
        div.className = 'message';
        div.dataset.id = String(id);

        const user = document.createElement('span');
        user.className = 'username';
        user.textContent = String(data.username);

        const content = document.createElement('span');
        content.className = 'content';
        content.textContent = String(data.message);

        const time = document.createElement('time');
        time.setAttribute('datetime', String(data.timestamp));
        time.textContent = formatTime(data.timestamp);

        div.append(user, ' ', content, ' ', time);
        return div;
    }

    // Puts el after the last element that sorts before it (usually: at the end).
    function placeInOrder(el) {
        const order = orderOf(el);
        let before = chatLog.lastElementChild;
        while (before && orderOf(before) > order) {
            before = before.previousElementSibling;
        }
        chatLog.insertBefore(el, before ? before.nextSibling : chatLog.firstChild);
    }

    function addMessage(data) {
        const id = parseId(data.id);
        if (id === null || typeof data.message !== 'string') {
            return;
        }
        if (messages.has(id)) {
            return;  // a replay repeats what the client may already have
        }
        const stick = nearBottom() || data.username === username;
        const el = messageElement(id, data);
        messages.set(id, el);
        lastId = Math.max(lastId, id);
        placeInOrder(el);
        if (stick) {
            scrollToBottom();
        }
    }

    function deleteMessage(value) {
        const id = parseId(value);
        const el = id === null ? undefined : messages.get(id);
        if (el) {
            el.remove();
            messages.delete(id);
        }
    }

    // More was missed than the server replays: say so where the skipped messages would be.
    function showGap(oldest) {
        const id = parseId(oldest);
        if (id === null) {
            return;
        }
        const note = document.createElement('div');
        note.className = 'chat-gap';
        note.dataset.order = String(id - 0.5);
        note.textContent = 'Some messages from while you were away are not shown here.';
        placeInOrder(note);
    }

    // ---------------------------------------------------------------------------------------
    // Who is here, who is typing.

    const members = new Set();
    const typists = new Map();  // username -> when to stop showing them
    let typingTimer = null;

    function renderMembers() {
        const names = Array.from(members).sort();
        const items = names.map(function (name) {
            const li = document.createElement('li');
            li.textContent = name;
            if (name === username) {
                li.className = 'me';
            }
            return li;
        });
        membersEl.replaceChildren(...items);
        membersRow.classList.remove('stale');
    }

    function setMembers(users) {
        if (!Array.isArray(users)) {
            return;
        }
        members.clear();
        for (const name of users) {
            if (typeof name === 'string') {
                members.add(name);
            }
        }
        renderMembers();
    }

    function renderTyping() {
        const now = Date.now();
        for (const [name, until] of typists) {
            if (until <= now) {
                typists.delete(name);
            }
        }
        const names = Array.from(typists.keys()).sort();
        let text = '';
        if (names.length === 1) {
            text = names[0] + ' is typing…';
        } else if (names.length === 2 || names.length === 3) {
            text = names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1] + ' are typing…';
        } else if (names.length > 3) {
            text = names.length + ' people are typing…';
        }
        typingEl.textContent = text;
        clearTimeout(typingTimer);
        typingTimer = null;
        if (names.length > 0) {
            const next = Math.min(...typists.values()) - now;
            typingTimer = setTimeout(renderTyping, Math.max(next, 50));
        }
    }

    function noteTyping(name) {
        if (typeof name !== 'string' || name === username) {
            return;
        }
        typists.set(name, Date.now() + TYPING_SHOWN_MS);
        renderTyping();
    }

    function stopTyping(name) {
        if (typists.delete(name)) {
            renderTyping();
        }
    }

    // ---------------------------------------------------------------------------------------
    // The connection.

    let socket = null;
    let v1 = false;             // the open socket speaks ferrochat.v1
    let attempt = 0;            // connects since the last good connection
    let retryTimer = null;
    let connectedOnce = false;
    let lastTypingSent = 0;

    // data-connection says which protocol is open ("ferrochat.v1", "legacy"), or
    // "connecting" / "reconnecting": for tests and whoever inspects the page.
    function setStatus(text, className, connection) {
        statusEl.textContent = text;
        statusEl.className = 'chat-status' + (className ? ' ' + className : '');
        statusEl.dataset.connection = connection;
    }

    function socketUrl(withAfter) {
        const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
            '/ws/chat/' + encodeURIComponent(roomName) + '/';
        return withAfter ? url + '?after=' + lastId : url;
    }

    function handleFrame(raw) {
        let data;
        try {
            data = JSON.parse(raw);
        } catch (err) {
            return;
        }
        if (data === null || typeof data !== 'object') {
            return;
        }
        if (!v1) {
            addMessage(data);  // legacy frames are chat messages, nothing else
            return;
        }
        switch (data.type) {
            case 'message':
                addMessage(data);
                stopTyping(data.username);
                break;
            case 'presence':
                setMembers(data.users);
                break;
            case 'join':
                if (typeof data.username === 'string') {
                    members.add(data.username);
                    renderMembers();
                }
                break;
            case 'leave':
                members.delete(data.username);
                renderMembers();
                stopTyping(data.username);
                break;
            case 'typing':
                noteTyping(data.username);
                break;
            case 'delete':
                deleteMessage(data.id);
                break;
            case 'gap':
                showGap(data.oldest);
                break;
            default:
                break;  // caught_up, and whatever a newer server adds
        }
    }

    // The legacy protocol replays nothing: after a reconnect, take what was missed from the
    // room page's history (the last 50 messages), read as text and merged by id.
    async function catchUpFromPage() {
        let html;
        try {
            const response = await fetch(location.pathname, {
                credentials: 'same-origin',
                headers: {'Accept': 'text/html'},
            });
            if (!response.ok) {
                return;
            }
            html = await response.text();
        } catch (err) {
            return;
        }
        const doc = new DOMParser().parseFromString(html, 'text/html');
        for (const el of doc.querySelectorAll('#chat-log .message')) {
            const user = el.querySelector('.username');
            const content = el.querySelector('.content');
            const time = el.querySelector('time');
            if (user && content && time) {
                addMessage({
                    id: el.dataset.id,
                    username: user.textContent,
                    message: content.textContent,
                    timestamp: time.getAttribute('datetime'),
                });
            }
        }
    }

    // Tries ferrochat.v1 first; a handshake that fails before opening is retried at once with
    // the legacy protocol (browsers fail a handshake whose answer selects no subprotocol).
    function connect(legacy) {
        retryTimer = null;
        const ws = legacy ? new WebSocket(socketUrl(false)) : new WebSocket(socketUrl(true), [PROTOCOL]);
        socket = ws;
        let openedAt = null;

        ws.onopen = function () {
            if (ws !== socket) {
                return;
            }
            openedAt = Date.now();
            v1 = ws.protocol === PROTOCOL;
            membersRow.hidden = !v1;
            setStatus('', '', v1 ? PROTOCOL : 'legacy');
            if (!v1 && connectedOnce) {
                catchUpFromPage();
            }
            connectedOnce = true;
        };

        ws.onmessage = function (e) {
            if (ws === socket) {
                handleFrame(e.data);
            }
        };

        ws.onclose = function () {
            if (ws !== socket) {
                return;
            }
            socket = null;
            v1 = false;
            typists.clear();
            renderTyping();
            membersRow.classList.add('stale');
            if (openedAt !== null && Date.now() - openedAt >= STABLE_MS) {
                attempt = 0;
            }
            if (openedAt === null && !legacy) {
                connect(true);
                return;
            }
            scheduleReconnect();
        };
    }

    function scheduleReconnect() {
        setStatus('reconnecting…', 'reconnecting', 'reconnecting');
        // The ceiling doubles from 1 s to 30 s; the delay is drawn from its upper half so that
        // the clients of a restarted server do not all come back at the same instant.
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
        attempt += 1;
        const delay = ceiling / 2 + Math.random() * (ceiling / 2);
        retryTimer = setTimeout(connect, delay, false);
    }

    // Network back, tab visible again, or the user wants to send: no need to wait out the backoff.
    function reconnectNow() {
        if (retryTimer !== null) {
            clearTimeout(retryTimer);
            connect(false);
        }
    }

    window.addEventListener('online', reconnectNow);
    document.addEventListener('visibilitychange', function () {
        if (document.visibilityState === 'visible') {
            reconnectNow();
        }
    });

    // ---------------------------------------------------------------------------------------
    // Sending.

    function isOpen() {
        return socket !== null && socket.readyState === WebSocket.OPEN;
    }

    // While the socket is down the text stays in the input, to be sent once it is back.
    function sendMessage() {
        const text = messageInput.value;
        if (!text.trim()) {
            return;
        }
        if (!isOpen()) {
            reconnectNow();
            return;
        }
        socket.send(JSON.stringify({'message': text}));
        messageInput.value = '';
        messageInput.focus();
    }

    messageInput.addEventListener('input', function () {
        const now = Date.now();
        if (v1 && isOpen() && messageInput.value.trim() && now - lastTypingSent >= TYPING_SEND_EVERY_MS) {
            lastTypingSent = now;
            socket.send(JSON.stringify({'type': 'typing'}));
        }
    });
    messageInput.addEventListener('keydown', function (e) {
        if (e.key === 'Enter') {
            e.preventDefault();
            sendMessage();
        }
    });
    submitButton.addEventListener('click', sendMessage);

    messageInput.placeholder = 'Message #' + roomName + ' as ' + username;
    membersRow.hidden = true;  // until the server says who is here
    statusEl.dataset.connection = 'connecting';
    scrollToBottom();
    messageInput.focus();
    connect(false);
})();
