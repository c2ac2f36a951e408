//! The deployment recipe in `deploy/`, run as written: Debian's nginx with `deploy/nginx.conf`
//! (only its ports and paths changed) in front of ferrochat on a Unix socket that the test holds
//! as systemd's `ferrochat.socket` would, ferrochat started as `ferrochat.service` starts it
//! (`runserver --fd 3`). Through nginx: signup, login, a chat between two browsers' sockets,
//! static files with cache headers, and a graceful restart (SIGTERM: the sockets get 1001, and
//! new connections reach the restarted process). The units pass `systemd-analyze verify`
//! where the machine has it.

mod support;

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::server::free_port;
use support::ws::{self, Event};
use support::{Client, SECRET_KEY, ferrochat_bin, repo_root};
use tokio::process::{Child, Command};

const NGINX: &str = "/usr/sbin/nginx";

fn require_nginx() {
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: install Debian's nginx (`apt-get install nginx`; tools/test-all \
         does it)"
    );
}

/// `deploy/nginx.conf` with its ports and paths pointed at this test's.
fn nginx_conf(dir: &Path, port: u16, socket: &Path) -> String {
    let conf = std::fs::read_to_string(repo_root().join("deploy/nginx.conf")).expect("nginx.conf");
    let static_dir = format!("{}/", repo_root().join("static").display());
    let replaced = [
        ("listen 80;", format!("listen 127.0.0.1:{port};")),
        (
            "unix:/run/ferrochat/ferrochat.sock",
            format!("unix:{}", socket.display()),
        ),
        ("/srv/ferrochat/static/", static_dir),
        (
            "/run/nginx.pid",
            dir.join("nginx.pid").display().to_string(),
        ),
        (
            "/var/log/nginx/error.log",
            dir.join("error.log").display().to_string(),
        ),
        (
            "/var/log/nginx/access.log",
            dir.join("access.log").display().to_string(),
        ),
    ];
    let mut out = conf;
    for (from, to) in replaced {
        assert!(
            out.contains(from),
            "deploy/nginx.conf no longer has {from:?}"
        );
        out = out.replace(from, &to);
    }
    out
}

/// The listening socket systemd's `ferrochat.socket` would hold: group www-data, mode 0660.
fn hold_socket(path: &Path) -> std::os::unix::net::UnixListener {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind the unit's socket");
    let group = nix_group("www-data");
    // SAFETY: chown takes a NUL-terminated path that outlives the call.
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let rc = unsafe { libc::chown(cpath.as_ptr(), u32::MAX, group) };
    assert_eq!(rc, 0, "chown the socket to www-data");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    listener
}

/// The gid of a group (Debian's nginx package creates www-data).
fn nix_group(name: &str) -> u32 {
    let groups = std::fs::read_to_string("/etc/group").expect("/etc/group");
    groups
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// `ferrochat runserver --fd 3` with `socket` as descriptor 3, as systemd starts the service.
fn start_ferrochat(socket: RawFd, env: &[(&str, String)], log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(ferrochat_bin());
    cmd.args(["runserver", "--fd", "3"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if socket == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(socket, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn ferrochat")
}

async fn wait_until_up(base: &str, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = reqwest::get(format!("{base}/healthz")).await
            && resp.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer through nginx:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn terminate(child: &mut Child) -> bool {
    if let Some(pid) = child.id() {
        // SAFETY: kill takes no pointers; the pid is our unreaped child's.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await,
        Ok(Ok(status)) if status.success()
    )
}

/// Signs up through the legacy form; the session key.
async fn sign_up(client: &Client, base: &str, username: &str) -> String {
    let form = client.get(&format!("{base}/signup/")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = form.csrf_token();
    let page = client
        .post(
            &format!("{base}/signup/"),
            &[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", username),
                ("password1", "a-Strong-pass-42"),
                ("password2", "a-Strong-pass-42"),
            ],
        )
        .await;
    assert_eq!(page.status, 302, "signup: {}", page.body);
    client
        .cookie(&format!("{base}/"), "sessionid")
        .expect("a session after signup")
}

#[tokio::test]
async fn the_recipe_serves_a_chat_through_nginx_and_restarts_gracefully() {
    require_nginx();
    let dir = tempfile::tempdir().expect("temp dir");
    // nginx's workers (www-data) must reach the socket: a directory they may enter.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket_path = dir.path().join("ferrochat.sock");
    let listener = hold_socket(&socket_path);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let room = format!("deploy{}", support::redis_env::random_hex(6));

    let env: Vec<(&str, String)> = vec![
        (
            "DATABASE_URL",
            format!("sqlite:///{}", dir.path().join("db.sqlite3").display()),
        ),
        ("DJANGO_SECRET_KEY", SECRET_KEY.to_owned()),
        ("CHANNEL_LAYER", "memory".to_owned()),
        ("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost".to_owned()),
        ("FERROCHAT_TRUSTED_PROXIES", "127.0.0.1/32,::1".to_owned()),
        (
            "FERROCHAT_SECURE_PROXY_SSL_HEADER",
            "HTTP_X_FORWARDED_PROTO,https".to_owned(),
        ),
    ];
    let log1 = dir.path().join("ferrochat-1.log");
    let mut ferrochat = start_ferrochat(listener.as_raw_fd(), &env, &log1);

    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), port, &socket_path)).expect("write conf");
    let mut nginx = Command::new(NGINX)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path())
        .args(["-e", "stderr", "-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start nginx");
    wait_until_up(&base, "ferrochat", &log1).await;

    // Static files come from nginx, with long cache headers.
    let js = reqwest::get(format!("{base}/static/chatapp/room.js"))
        .await
        .expect("GET static");
    assert_eq!(js.status().as_u16(), 200);
    assert!(js.headers().contains_key("expires"), "{:?}", js.headers());
    assert!(
        js.headers()
            .get_all("cache-control")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("max-age=604800")),
        "{:?}",
        js.headers()
    );

    // Signup and login through the proxy (CSRF's Origin check sees nginx's Host).
    let alice_client = Client::new();
    let alice = sign_up(&alice_client, &base, "alice").await;
    let bob_client = Client::new();
    sign_up(&bob_client, &base, "bob").await;
    let bob_again = Client::new();
    let page = bob_again.login(&base, "bob", "a-Strong-pass-42").await;
    assert_eq!(page.status, 302, "login through nginx: {}", page.body);
    let bob = bob_again
        .cookie(&format!("{base}/"), "sessionid")
        .expect("a session after login");
    let room_page = alice_client.get(&format!("{base}/chat/{room}/")).await;
    assert_eq!(room_page.status, 200);

    // Two browsers' sockets, through nginx's upgrade.
    let url = format!("ws://127.0.0.1:{port}/ws/chat/{room}/");
    let mut a = ws::connect(&url, &alice).await;
    let mut b = ws::connect(&url, &bob).await;
    a.say("hello through nginx").await;
    for s in [&mut a, &mut b] {
        let v = s.next_json().await;
        assert_eq!(v["message"], "hello through nginx");
        assert_eq!(v["username"], "alice");
    }
    b.say("hi alice").await;
    for s in [&mut a, &mut b] {
        assert_eq!(s.next_json().await["message"], "hi alice");
    }

    // Graceful restart: SIGTERM closes every socket with 1001 ...
    assert!(
        terminate(&mut ferrochat).await,
        "ferrochat exits cleanly on SIGTERM"
    );
    for s in [&mut a, &mut b] {
        match s.next_event().await {
            Event::Close(code, _) => assert_eq!(code, 1001),
            other => panic!("expected 1001, got {other:?}"),
        }
    }
    // ... and the socket systemd holds hands new connections to the next process.
    let log2 = dir.path().join("ferrochat-2.log");
    let mut restarted = start_ferrochat(listener.as_raw_fd(), &env, &log2);
    wait_until_up(&base, "the restarted ferrochat", &log2).await;
    let mut again = ws::connect(&url, &alice).await;
    again.say("after the restart").await;
    assert_eq!(again.next_json().await["message"], "after the restart");
    let history = alice_client.get(&format!("{base}/chat/{room}/")).await;
    assert!(
        history.body.contains("hello through nginx"),
        "{}",
        history.body
    );

    // The access log has the client nginx saw, not the socket.
    drop(again);
    assert!(terminate(&mut restarted).await);
    let log = std::fs::read_to_string(&log2).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("ferrochat::access") && l.contains("client=127.0.0.1")),
        "{log}"
    );
    let _ = nginx.kill().await;
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let analyze = PathBuf::from("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        // This machine has no systemd tools: nothing to verify with.
        eprintln!("systemd-analyze not installed; the units were not verified");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for unit in ["ferrochat.socket", "ferrochat.service"] {
        let text = std::fs::read_to_string(repo_root().join("deploy").join(unit)).expect("unit");
        let text = text.replace(
            "/usr/local/bin/ferrochat",
            &ferrochat_bin().display().to_string(),
        );
        std::fs::write(dir.path().join(unit), text).expect("write unit");
    }
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("ferrochat.socket"))
        .arg(dir.path().join("ferrochat.service"))
        .output()
        .expect("run systemd-analyze");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
