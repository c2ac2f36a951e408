//! A real WebSocket client (tokio-tungstenite) for the chat socket, as a browser opens it: the
//! session cookie, an `Origin` header, and frames read with a deadline so a missing frame
//! fails the test instead of hanging it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a handshake went: the socket, or the HTTP status it was refused with.
pub async fn try_connect(url: &str, cookie: Option<&str>, origin: Option<&str>) -> Result<Ws, u16> {
    let mut request = url.into_client_request().expect("a ws:// URL");
    if let Some(cookie) = cookie {
        request.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(cookie).expect("cookie header"),
        );
    }
    if let Some(origin) = origin {
        request.headers_mut().insert(
            "origin",
            HeaderValue::from_str(origin).expect("origin header"),
        );
    }
    match tokio::time::timeout(FRAME_WAIT, tokio_tungstenite::connect_async(request)).await {
        Err(_) => panic!("the handshake to {url} did not finish within {FRAME_WAIT:?}"),
        Ok(Ok((stream, response))) => {
            assert_eq!(response.status().as_u16(), 101);
            Ok(Ws { stream })
        }
        Ok(Err(tungstenite::Error::Http(response))) => Err(response.status().as_u16()),
        Ok(Err(e)) => panic!("the handshake to {url} failed below HTTP: {e}"),
    }
}

/// Connects with `sessionid=<key>` and the Origin of `http://<host of url>`; panics on refusal.
pub async fn connect(url: &str, session_key: &str) -> Ws {
    let origin = origin_of(url);
    match try_connect(
        url,
        Some(&format!("sessionid={session_key}")),
        Some(&origin),
    )
    .await
    {
        Ok(ws) => ws,
        Err(status) => panic!("the chat socket {url} was refused with HTTP {status}"),
    }
}

/// `ws://127.0.0.1:1234/x` → `http://127.0.0.1:1234`, what a page of that server sends.
pub fn origin_of(url: &str) -> String {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    let host = rest.split('/').next().unwrap_or(rest);
    format!("http://{host}")
}

/// One open chat socket.
pub struct Ws {
    pub stream: Stream,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Text(String),
    /// A close frame: its code (1005 when it had none) and reason.
    Close(u16, String),
    /// The connection ended without a close frame (or with an I/O error).
    Gone,
}

impl Ws {
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send a text frame");
    }

    /// `{"message": <text>}` as `room.js` sends it (`JSON.stringify`).
    pub async fn say(&mut self, text: &str) {
        let frame = serde_json::json!({ "message": text }).to_string();
        self.send_text(&frame).await;
    }

    pub async fn send(&mut self, msg: Message) {
        self.stream.send(msg).await.expect("send a frame");
    }

    /// The next text frame, close or end, skipping pings and pongs; panics after `wait`.
    pub async fn next_event_within(&mut self, wait: Duration) -> Event {
        let read = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(t))) => return Event::Text(t.as_str().to_owned()),
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(CloseFrame { code, reason }) => {
                                Event::Close(code.into(), reason.as_str().to_owned())
                            }
                            None => Event::Close(1005, String::new()),
                        };
                    }
                    Some(Ok(Message::Binary(b))) => panic!("the server sent a binary frame: {b:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Event::Gone,
                }
            }
        };
        match tokio::time::timeout(wait, read).await {
            Ok(event) => event,
            Err(_) => panic!("nothing arrived within {wait:?}"),
        }
    }

    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(FRAME_WAIT).await
    }

    /// The next text frame; panics on anything else.
    pub async fn next_text(&mut self) -> String {
        match self.next_event().await {
            Event::Text(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame parsed as JSON.
    pub async fn next_json(&mut self) -> serde_json::Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Asserts that nothing but pings arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let read = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => return other,
                }
            }
        };
        if let Ok(other) = tokio::time::timeout(wait, read).await {
            panic!("expected silence, got {other:?}");
        }
    }

    /// Reads until a close frame and returns its code; panics on a text frame or an end without one.
    pub async fn expect_close(&mut self) -> u16 {
        match self.next_event().await {
            Event::Close(code, _) => code,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A user with a cheap (1000-iteration) hash, logged in through ferrochat's own login form;
/// returns the browser-like client and its session key.
pub async fn logged_in(server: &super::TestServer, username: &str) -> (super::Client, String) {
    let password = "correct horse battery";
    server.create_user(username, password).await;
    let client = super::Client::new();
    let page = client.login(&server.url(""), username, password).await;
    assert_eq!(page.status, 302, "login as {username}: {}", page.body);
    let key = client
        .cookie(&server.url("/"), "sessionid")
        .expect("a session cookie after login");
    (client, key)
}

/// `ws://<server>/ws/chat/<room>/`.
pub fn room_url(server: &super::TestServer, room: &str) -> String {
    format!("ws://{}/ws/chat/{room}/", server.addr)
}
