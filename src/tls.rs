//! TLS shared by the database and Redis clients: both use rustls, and the process must have
//! exactly one rustls crypto provider (two in one binary panic at the first handshake). Imports
//! nothing else of the crate.

/// Installs ring as the process's rustls crypto provider; sqlx builds its configurations with
/// ring explicitly and redis-rs takes the process default, so both agree. Idempotent.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only means a provider is installed already (by an embedding program): keep it.
        // ring's provider is deprecated in rustls 0.23.48 (no post-quantum key exchange) but it
        // is the one sqlx 0.9 hard-codes; aws-lc-rs would add a second provider and a C build.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let _ = provider.install_default();
    });
}
