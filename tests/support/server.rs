//! Servers for end-to-end tests: ferrochat booted in-process on a free port, the legacy Django
//! app under Daphne on another, and a cookie-keeping HTTP client that talks to both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use salvo::conn::{Acceptor, Listener};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use ferrochat::config::Settings;
use ferrochat::web::AppState;
use ferrochat::web::server::{build_state, serve};

use super::{Legacy, SECRET_KEY, TestDb};

/// ferrochat serving the real router on 127.0.0.1 with an OS-assigned port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Boots ferrochat on `db` (SQLite gets its schema on first start; migrate other backends
    /// first) with the test secret key, the in-process channel layer and `env` on top.
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> TestServer {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("DATABASE_URL".into(), db.url().to_owned());
        vars.insert("DJANGO_SECRET_KEY".into(), SECRET_KEY.into());
        vars.insert("CHANNEL_LAYER".into(), "memory".into());
        for (k, v) in env {
            vars.insert((*k).into(), (*v).into());
        }
        let settings = Settings::from_vars(&vars, Path::new("/")).expect("test settings parse");
        let state = build_state(settings).await.expect("ferrochat state builds");
        let acceptor = salvo::conn::TcpListener::new("127.0.0.1:0")
            .try_bind()
            .await
            .expect("bind a free port");
        let addr = acceptor.holdings()[0]
            .local_addr
            .clone()
            .into_std()
            .expect("a TCP address");
        let (stop, stopped) = oneshot::channel::<()>();
        let admin = ferrochat::admin::router().expect("admin templates compile");
        let task = tokio::spawn(serve(acceptor, state.clone(), admin, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Adds a user with a cheap (1000-iteration) hash; logging in upgrades it, as Django would.
    pub async fn create_user(&self, username: &str, password: &str) {
        self.state
            .db
            .create_user(ferrochat::db::users::NewUser {
                username: ferrochat::django::validators::Username::parse(username)
                    .expect("valid username"),
                email: String::new(),
                password_hash: ferrochat::django::hashers::make_password_with(
                    password,
                    "testsaltTESTSALT123456",
                    1000,
                ),
                is_staff: false,
                is_superuser: false,
            })
            .await
            .expect("create user");
    }

    /// Adds a user row with any username, as Django's `User.objects.create_user` can (it runs
    /// no validator; ferrochat's own `create_user` takes only a valid `Username`).
    pub async fn insert_user_row(&self, username: &str, password: &str) {
        assert!(
            !username.contains('\\'),
            "no backslashes: MySQL would read them"
        );
        let hash = ferrochat::django::hashers::make_password_with(
            password,
            "testsaltTESTSALT123456",
            1000,
        );
        let quoted = username.replace('\'', "''");
        super::db::exec(
            &self.state.db,
            &format!(
                "INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, \
                 last_name, email, is_staff, is_active, date_joined) VALUES ('{hash}', NULL, \
                 FALSE, '{quoted}', '', '', '', FALSE, TRUE, '2024-01-01 00:00:00')"
            ),
        )
        .await;
    }

    /// Stops accepting and waits for the server to wind down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The legacy Django app under Daphne, killed on drop.
pub struct Daphne {
    pub port: u16,
    child: Child,
    _legacy: Legacy,
}

impl Daphne {
    /// Starts `daphne chat_project.asgi:application` on a free port and waits until `/login/`
    /// answers. The `legacy` project copy (and its environment) is kept alive with it.
    pub async fn start(legacy: Legacy) -> Daphne {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ferrochat-daphne-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("create the daphne log");
        let child = legacy
            .command("daphne")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "chat_project.asgi:application",
            ])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start daphne from the legacy venv");
        let mut daphne = Daphne {
            port,
            child,
            _legacy: legacy,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = client.get(daphne.url("/login/")).send().await
                && resp.status().is_success()
            {
                return daphne;
            }
            if let Ok(Some(status)) = daphne.child.try_wait() {
                panic!(
                    "daphne exited with {status} before serving:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "daphne did not answer /login/ within 60 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Daphne {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// A browser-like client: keeps cookies (for every port of 127.0.0.1, as a browser does, which
/// is exactly the "same user, other server" situation), never follows redirects.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("build the HTTP client");
        Client { http, jar }
    }

    pub async fn get(&self, url: &str) -> Page {
        Page::read(self.http.get(url).send().await.expect("GET")).await
    }

    /// POSTs a form the way a browser submits it from a page of the same origin.
    pub async fn post(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let origin = reqwest::Url::parse(url)
            .expect("url")
            .origin()
            .ascii_serialization();
        let resp = self
            .http
            .post(url)
            .header("Origin", origin)
            .form(fields)
            .send()
            .await
            .expect("POST");
        Page::read(resp).await
    }

    /// The value of a cookie the client would send to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(url).ok()?;
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// Sets a cookie as if the server at `url` had set it.
    pub fn set_cookie(&self, url: &str, name: &str, value: &str) {
        let url = reqwest::Url::parse(url).expect("url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }

    /// Logs in through the login form at `base` (CSRF and all); returns the POST's response.
    pub async fn login(&self, base: &str, username: &str, password: &str) -> Page {
        let form = self.get(&format!("{base}/login/")).await;
        let token = form.csrf_token();
        self.post(
            &format!("{base}/login/"),
            &[
                ("csrfmiddlewaretoken", &token),
                ("username", username),
                ("password", password),
                ("next", ""),
            ],
        )
        .await
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    async fn read(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The first `csrfmiddlewaretoken` hidden input's value.
    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrfmiddlewaretoken\" value=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .unwrap_or_else(|| {
                panic!(
                    "no csrfmiddlewaretoken in the page (status {}):\n{}",
                    self.status, self.body
                )
            });
        self.body[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}
