//! ferrochat against TLS-only database and Redis servers, with the URLs a Django deployment of
//! the legacy app already has: a private PostgreSQL that rejects plain-text connections, a
//! private MariaDB with `require_secure_transport`, and a `redis-server` with only a TLS port.
//! The legacy app under Daphne and ferrochat use the very same URLs (`verify-full` included)
//! and chat across nodes; weaker or wrong settings are refused with the driver's reason.
//!
//! Each test owns its servers (tests/support/private); they run one at a time (nextest group
//! `services`).

mod support;

use std::time::Duration;

use ferrochat::db::{DatabaseUrl, Db};
use support::private::{Certs, PrivateMariaDb, PrivatePostgres, TlsRedis};
use support::redis_env::{eventually, health, node_id, random_hex};
use support::ws::{Ws, connect, logged_in, room_url};
use support::{Daphne, Legacy, TestDb, TestServer};

const WAIT: Duration = Duration::from_secs(20);

/// ferrochat on `database_url` and the Redis at `redis_url` (the test database argument of
/// `TestServer::start` is replaced by the URL under test).
async fn ferrochat_on(database_url: &str, redis_url: &str) -> TestServer {
    let placeholder = TestDb::sqlite();
    let node = node_id("tls");
    TestServer::start(
        &placeholder,
        &[
            ("DATABASE_URL", database_url),
            ("CHANNEL_LAYER", "redis"),
            ("REDIS_URL", redis_url),
            ("FERROCHAT_NODE_ID", &node),
        ],
    )
    .await
}

async fn connect_err(raw: &str) -> String {
    let url = DatabaseUrl::parse(raw, std::path::Path::new("/")).expect("the URL parses");
    match Db::connect(&url).await {
        Ok(db) => {
            db.close().await;
            panic!("{raw}: connected, but the server or the URL must refuse it")
        }
        Err(e) => e.to_string(),
    }
}

async fn next_message(ws: &mut Ws) -> String {
    let frame: serde_json::Value = tokio::time::timeout(WAIT, ws.next_json())
        .await
        .expect("a chat frame in time");
    frame["message"].as_str().unwrap_or_default().to_owned()
}

/// A ferrochat client and a Daphne client in one room: each one's message reaches both.
async fn chat_across(ferrochat: &TestServer, daphne: &Daphne) {
    let room = format!("tls{}", random_hex(8));
    let (_alice_client, alice_key) = logged_in(ferrochat, "alice").await;
    let (_bob_client, bob_key) = logged_in(ferrochat, "bob").await;
    let mut alice = connect(&room_url(ferrochat, &room), &alice_key).await;
    let mut bob = connect(
        &format!("ws://127.0.0.1:{}/ws/chat/{room}/", daphne.port),
        &bob_key,
    )
    .await;
    alice.say("hello from ferrochat").await;
    assert_eq!(next_message(&mut alice).await, "hello from ferrochat");
    assert_eq!(next_message(&mut bob).await, "hello from ferrochat");
    bob.say("hello from daphne").await;
    assert_eq!(next_message(&mut bob).await, "hello from daphne");
    assert_eq!(next_message(&mut alice).await, "hello from daphne");
}

/// `ferrochat check` (the binary) with these URLs.
async fn check(database_url: &str, redis_url: &str) -> String {
    let out = tokio::process::Command::new(support::ferrochat_bin())
        .arg("check")
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url)
        .env("CHANNEL_LAYER", "redis")
        .env("DJANGO_SECRET_KEY", support::SECRET_KEY)
        .env("DJANGO_DEBUG", "0")
        .output()
        .await
        .expect("run ferrochat check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_postgres_and_redis_serve_django_and_ferrochat_alike() {
    let certs = Certs::make();
    let pg = PrivatePostgres::start(&certs);
    let redis = TlsRedis::start(&certs, true).await;
    let ca = certs.ca_pem().display().to_string();
    let database_url = pg.url(&format!("sslmode=verify-full&sslrootcert={ca}"));
    let redis_url = redis.url_with_ca(0);

    // Plain text, a wrong CA and a host name the certificate does not name are refused.
    let err = connect_err(&pg.url("sslmode=disable")).await;
    assert!(
        err.contains("pg_hba.conf") || err.contains("no encryption"),
        "{err}"
    );
    let other = certs.other_ca_pem().display().to_string();
    let err = connect_err(&pg.url(&format!("sslmode=verify-ca&sslrootcert={other}"))).await;
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let by_ip = database_url.replace("@localhost:", "@127.0.0.2:");
    connect_err(&by_ip).await;
    // `prefer` (libpq's default) and `require` encrypt without checking: they connect.
    for query in ["", "sslmode=require", "sslmode=prefer"] {
        let url = DatabaseUrl::parse(&pg.url(query), std::path::Path::new("/")).expect("parses");
        Db::connect(&url).await.expect(query).close().await;
    }
    // redis-py's defaults: the chain is checked, the name (redis.internal) is not, unless asked.
    ferrochat::layer::ping_redis(&redis_url)
        .await
        .expect("default rediss:// URL");
    let checked = format!("{redis_url}&ssl_check_hostname=true");
    assert!(ferrochat::layer::ping_redis(&checked).await.is_err());
    let wrong_ca = redis.url(0, &format!("ssl_ca_certs={other}"));
    assert!(ferrochat::layer::ping_redis(&wrong_ca).await.is_err());
    let unverified = redis.url(0, "ssl_cert_reqs=none");
    ferrochat::layer::ping_redis(&unverified)
        .await
        .expect("ssl_cert_reqs=none");
    let plain = format!("redis://127.0.0.1:{}/0", redis.port);
    assert!(ferrochat::layer::ping_redis(&plain).await.is_err());

    // A client certificate logs in where pg_hba says `cert` (no password).
    let (client_cert, client_key) = certs.client_cert();
    let by_cert = pg.cert_url(&format!(
        "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        client_cert.display(),
        client_key.display()
    ));
    let url = DatabaseUrl::parse(&by_cert, std::path::Path::new("/")).expect("parses");
    Db::connect(&url)
        .await
        .expect("sslcert/sslkey")
        .close()
        .await;
    connect_err(&pg.cert_url(&format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    // And a Redis that requires client certificates: ssl_certfile/ssl_keyfile.
    let mutual = TlsRedis::start_with(&certs, false, true).await;
    let with_cert = format!(
        "{}&ssl_certfile={}&ssl_keyfile={}",
        mutual.url_with_ca(0),
        client_cert.display(),
        client_key.display()
    );
    ferrochat::layer::ping_redis(&with_cert)
        .await
        .expect("ssl_certfile/ssl_keyfile");
    assert!(
        ferrochat::layer::ping_redis(&mutual.url_with_ca(0))
            .await
            .is_err()
    );
    drop(mutual);

    // Django migrates over the same URL (psycopg reads the same query), then both serve it.
    let legacy = Legacy::new(&database_url)
        .env_remove("CHANNEL_LAYER")
        .env("REDIS_URL", &redis_url);
    legacy.manage_ok(&["migrate"]).await;
    let report = check(&database_url, &redis_url).await;
    assert!(
        report.contains("System check identified no issues"),
        "{report}"
    );
    let daphne = Daphne::start(legacy).await;
    let ferrochat = ferrochat_on(&database_url, &redis_url).await;
    let base = ferrochat.url("");
    eventually(WAIT, "/healthz says ok over TLS", || async {
        health(&base).await["status"] == "ok"
    })
    .await;
    let status = health(&base).await;
    assert_eq!(status["database"], "ok", "{status}");
    assert_eq!(status["channel_layer_status"], "ok", "{status}");
    chat_across(&ferrochat, &daphne).await;
    ferrochat.stop().await;
    drop(daphne);
    assert!(!pg.log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_mariadb_serves_django_and_ferrochat_alike() {
    let certs = Certs::make();
    let mariadb = PrivateMariaDb::start(&certs);
    let redis = TlsRedis::start(&certs, false).await;
    let ca = certs.ca_pem().display().to_string();
    let verified = format!("ssl_ca={ca}&ssl_verify_cert=true&ssl_verify_identity=true");
    let database_url = mariadb.url(&verified);
    // Host names are checked here: this server's certificate names 127.0.0.1 and localhost.
    let redis_url = format!("{}&ssl_check_hostname=true", redis.url_with_ca(0));

    // No ssl_* option means no TLS (PyMySQL's meaning): the server refuses it.
    // (MariaDB 10.11 answers "Access denied" to a plain-text login under
    // require_secure_transport.)
    connect_err(&mariadb.url("")).await;
    let other = certs.other_ca_pem().display().to_string();
    connect_err(&mariadb.url(&format!("ssl_ca={other}&ssl_verify_cert=true"))).await;
    // ssl_ca alone turns TLS on without verifying anything, as in PyMySQL: even a wrong CA.
    let url = DatabaseUrl::parse(
        &mariadb.url(&format!("ssl_ca={other}")),
        std::path::Path::new("/"),
    )
    .expect("parses");
    Db::connect(&url).await.expect("ssl_ca alone").close().await;

    let legacy = Legacy::new(&database_url)
        .env_remove("CHANNEL_LAYER")
        .env("REDIS_URL", &redis_url);
    legacy.manage_ok(&["migrate"]).await;
    let report = check(&database_url, &redis_url).await;
    assert!(
        report.contains("System check identified no issues"),
        "{report}"
    );
    let daphne = Daphne::start(legacy).await;
    let ferrochat = ferrochat_on(&database_url, &redis_url).await;
    chat_across(&ferrochat, &daphne).await;
    ferrochat.stop().await;
    drop(daphne);
    drop(mariadb);
}
