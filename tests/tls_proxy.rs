//! Behind a TLS proxy, ferrochat and the legacy app under Daphne answer alike: the same
//! requests (a proxy's `X-Forwarded-Proto`/`X-Forwarded-Host`, Origins and Referers of either
//! scheme) get the same statuses and the same `Secure` cookies, with Django's
//! `SECURE_PROXY_SSL_HEADER`, `USE_X_FORWARDED_HOST`, `SESSION_COOKIE_SECURE` and
//! `CSRF_COOKIE_SECURE` set (tests/django_settings/tls_proxy_settings.py) and ferrochat's
//! `FERROCHAT_` variables set to match.

mod support;

use support::{Daphne, Legacy, TestDb, TestServer, repo_root};

const HOST: &str = "chat.example";

/// What a response said that the settings decide.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    /// `name; Secure?` for each cookie set, sorted.
    cookies: Vec<String>,
}

struct Target {
    base: String,
}

impl Target {
    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// The login form as the proxy forwards it: its csrftoken cookie and form token.
    async fn login_form(&self, proto: &str) -> (Outcome, String, String) {
        let resp = Target::http()
            .get(format!("{}/login/", self.base))
            .header("X-Forwarded-Proto", proto)
            .header("X-Forwarded-Host", HOST)
            .send()
            .await
            .expect("GET /login/");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("csrftoken="))
            .and_then(|c| c.split(';').next())
            .expect("a csrftoken cookie")
            .to_owned();
        let outcome = outcome(&resp);
        let body = resp.text().await.expect("body");
        let token = body
            .split("name=\"csrfmiddlewaretoken\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a form token")
            .to_owned();
        (outcome, cookie, token)
    }

    /// A login POST through the proxy with `proto`, the given Origin and Referer.
    async fn login(&self, proto: &str, origin: Option<&str>, referer: Option<&str>) -> Outcome {
        let (_, cookie, token) = self.login_form(proto).await;
        let mut req = Target::http()
            .post(format!("{}/login/", self.base))
            .header("X-Forwarded-Proto", proto)
            .header("X-Forwarded-Host", HOST)
            .header("Cookie", format!("csrftoken={cookie}"))
            .form(&[
                ("csrfmiddlewaretoken", token.as_str()),
                ("username", "alice"),
                ("password", "correct horse battery"),
                ("next", ""),
            ]);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        if let Some(referer) = referer {
            req = req.header("Referer", referer);
        }
        outcome(&req.send().await.expect("POST /login/"))
    }

    async fn get_with_host(&self, forwarded_host: &str) -> u16 {
        Target::http()
            .get(format!("{}/login/", self.base))
            .header("X-Forwarded-Host", forwarded_host)
            .send()
            .await
            .expect("GET")
            .status()
            .as_u16()
    }
}

fn outcome(resp: &reqwest::Response) -> Outcome {
    let mut cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| {
            let name = c.split('=').next().unwrap_or_default();
            let secure = c
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("secure"));
            format!("{name}{}", if secure { "; Secure" } else { "" })
        })
        .collect();
    cookies.sort();
    Outcome {
        status: resp.status().as_u16(),
        cookies,
    }
}

#[tokio::test]
async fn behind_a_tls_proxy_ferrochat_answers_as_django_does() {
    let db = TestDb::sqlite();
    let allowed = format!("127.0.0.1,localhost,{HOST}");
    let ferrochat = TestServer::start(
        &db,
        &[
            ("DJANGO_ALLOWED_HOSTS", &allowed),
            (
                "FERROCHAT_SECURE_PROXY_SSL_HEADER",
                "HTTP_X_FORWARDED_PROTO,https",
            ),
            ("FERROCHAT_USE_X_FORWARDED_HOST", "1"),
            ("FERROCHAT_SESSION_COOKIE_SECURE", "1"),
            ("FERROCHAT_CSRF_COOKIE_SECURE", "true"),
        ],
    )
    .await;
    ferrochat
        .create_user("alice", "correct horse battery")
        .await;
    let settings_dir = repo_root().join("tests/django_settings");
    let legacy = Legacy::new(db.url())
        .env("DJANGO_ALLOWED_HOSTS", &allowed)
        .env("PYTHONPATH", &settings_dir.display().to_string())
        .env("DJANGO_SETTINGS_MODULE", "tls_proxy_settings");
    let daphne = Daphne::start(legacy).await;
    let targets = [
        (
            "ferrochat",
            Target {
                base: ferrochat.url(""),
            },
        ),
        (
            "Daphne",
            Target {
                base: daphne.url(""),
            },
        ),
    ];

    let https = format!("https://{HOST}");
    let http = format!("http://{HOST}");
    let https_referer = format!("https://{HOST}/login/");
    let http_referer = format!("http://{HOST}/login/");
    let mut seen: Vec<Vec<Outcome>> = Vec::new();
    for (name, target) in &targets {
        let mut outcomes = Vec::new();
        outcomes.push(target.login_form("https").await.0);
        outcomes.push(target.login_form("http").await.0);
        // The Origin must carry the scheme the proxy says.
        outcomes.push(target.login("https", Some(&https), None).await);
        outcomes.push(target.login("https", Some(&http), None).await);
        outcomes.push(target.login("http", Some(&http), None).await);
        outcomes.push(target.login("http", Some(&https), None).await);
        // Without an Origin, a secure request's Referer must be https and of this host.
        outcomes.push(target.login("https", None, Some(&https_referer)).await);
        outcomes.push(target.login("https", None, Some(&http_referer)).await);
        outcomes.push(target.login("https", None, None).await);
        outcomes.push(Outcome {
            status: target.get_with_host("evil.example").await,
            cookies: Vec::new(),
        });
        outcomes.push(Outcome {
            status: target.get_with_host(HOST).await,
            cookies: Vec::new(),
        });
        eprintln!("{name}: {outcomes:#?}");
        seen.push(outcomes);
    }
    assert_eq!(
        seen[0], seen[1],
        "ferrochat (left) and Daphne (right) differ"
    );
    // And what they agree on is Django's behaviour behind TLS.
    let ours = &seen[0];
    assert_eq!(ours[0].cookies, ["csrftoken; Secure"]);
    assert_eq!(ours[2].status, 302);
    assert!(
        ours[2].cookies.contains(&"sessionid; Secure".to_owned()),
        "{:?}",
        ours[2]
    );
    assert_eq!(ours[3].status, 403);
    assert_eq!(ours[6].status, 302);
    assert_eq!(ours[7].status, 403);
    assert_eq!(ours[9].status, 400);
    ferrochat.stop().await;
}
