//! The deployment checks of `manage.py check --deploy` that apply to the legacy app as
//! ferrochat serves it (`django/core/checks/security/{base,sessions,csrf}.py`, Django 5.0.1):
//! DEBUG on, an insecure `SECRET_KEY` (or fallback), and session and CSRF cookies not marked
//! secure. The legacy app has `django.contrib.sessions` in `INSTALLED_APPS` and
//! `SessionMiddleware` and `CsrfViewMiddleware` in `MIDDLEWARE`, which is what makes these fire
//! as they do. HSTS, SSL redirect and the like belong to the TLS proxy in front and are left
//! to it.

/// `base.py SECRET_KEY_INSECURE_PREFIX`, `SECRET_KEY_MIN_LENGTH`, `SECRET_KEY_MIN_UNIQUE_CHARACTERS`.
const INSECURE_PREFIX: &str = "django-insecure-";
const MIN_LENGTH: usize = 50;
const MIN_UNIQUE_CHARACTERS: usize = 5;

/// What the deployment checks look at.
#[derive(Debug, Clone, Copy)]
pub struct DeploySettings<'a> {
    pub debug: bool,
    pub secret_key: &'a str,
    pub secret_key_fallbacks: &'a [String],
    pub session_cookie_secure: bool,
    pub csrf_cookie_secure: bool,
}

/// One warning: Django's id and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployWarning {
    pub id: &'static str,
    pub msg: String,
}

/// `base.py _check_secret_key`: long enough, varied enough, not Django's generated dev key.
pub fn secret_key_is_secure(key: &str) -> bool {
    let unique: std::collections::HashSet<char> = key.chars().collect();
    unique.len() >= MIN_UNIQUE_CHARACTERS
        && key.chars().count() >= MIN_LENGTH
        && !key.starts_with(INSECURE_PREFIX)
}

/// `base.py SECRET_KEY_WARNING_MSG % name`.
fn secret_key_message(name: &str) -> String {
    format!(
        "Your {name} has less than {MIN_LENGTH} characters, less than \
         {MIN_UNIQUE_CHARACTERS} unique characters, or it's prefixed with \
         '{INSECURE_PREFIX}' indicating that it was generated automatically by Django. \
         Please generate a long and random value, otherwise many of Django's \
         security-critical features will be vulnerable to attack."
    )
}

/// Every deployment warning, in Django's registration order.
pub fn deploy_warnings(s: &DeploySettings<'_>) -> Vec<DeployWarning> {
    let mut out = Vec::new();
    let mut warn = |id, msg: String| out.push(DeployWarning { id, msg });
    // sessions.py check_session_cookie_secure: W010 (app) and W011 (middleware) become W012.
    if !s.session_cookie_secure {
        warn(
            "security.W012",
            "SESSION_COOKIE_SECURE is not set to True. Using a secure-only session cookie \
             makes it more difficult for network traffic sniffers to hijack user sessions."
                .to_owned(),
        );
    }
    // csrf.py check_csrf_cookie_secure.
    if !s.csrf_cookie_secure {
        warn(
            "security.W016",
            "You have 'django.middleware.csrf.CsrfViewMiddleware' in your MIDDLEWARE, but you \
             have not set CSRF_COOKIE_SECURE to True. Using a secure-only CSRF cookie makes it \
             more difficult for network traffic sniffers to steal the CSRF token."
                .to_owned(),
        );
    }
    // base.py check_secret_key, check_secret_key_fallbacks, check_debug.
    if !secret_key_is_secure(s.secret_key) {
        warn("security.W009", secret_key_message("SECRET_KEY"));
    }
    for (index, key) in s.secret_key_fallbacks.iter().enumerate() {
        if !secret_key_is_secure(key) {
            warn(
                "security.W025",
                secret_key_message(&format!("SECRET_KEY_FALLBACKS[{index}]")),
            );
        }
    }
    if s.debug {
        warn(
            "security.W018",
            "You should not have DEBUG set to True in deployment.".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "k7#Qv9!zP2@xL5$wR8^tN1&yM4*uB6(oE3)iA0-sD9+fG2=hJ5";

    #[test]
    fn secret_keys_as_django_judges_them() {
        assert!(secret_key_is_secure(GOOD));
        assert!(
            !secret_key_is_secure(&"ab".repeat(30)),
            "too few unique characters"
        );
        assert!(!secret_key_is_secure("short-but-varied-0123456789"));
        assert!(!secret_key_is_secure(&format!("django-insecure-{GOOD}")));
    }

    #[test]
    fn a_secure_deployment_has_no_warning_and_the_legacy_defaults_have_all() {
        let secure = DeploySettings {
            debug: false,
            secret_key: GOOD,
            secret_key_fallbacks: &[],
            session_cookie_secure: true,
            csrf_cookie_secure: true,
        };
        assert_eq!(deploy_warnings(&secure), []);
        let fallbacks = ["old".to_owned()];
        let legacy = DeploySettings {
            debug: true,
            secret_key: "django-insecure-dev-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz",
            secret_key_fallbacks: &fallbacks,
            session_cookie_secure: false,
            csrf_cookie_secure: false,
        };
        let ids: Vec<&str> = deploy_warnings(&legacy).iter().map(|w| w.id).collect();
        assert_eq!(
            ids,
            [
                "security.W012",
                "security.W016",
                "security.W009",
                "security.W025",
                "security.W018"
            ]
        );
        assert!(
            deploy_warnings(&legacy)[3]
                .msg
                .starts_with("Your SECRET_KEY_FALLBACKS[0] has less")
        );
    }
}
