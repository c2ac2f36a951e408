//! Authentication off the reactor: `ModelBackend.authenticate` with the password check on a
//! bounded blocking pool (PBKDF2 at 720 000 iterations is ~85 ms of one core).

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::db::users::User;
use crate::db::{Db, DbError};
use crate::django::hashers::{self, PasswordCheck};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the password hashing pool is gone")]
    PoolClosed,
}

/// Runs password hashing on tokio's blocking threads, at most `permits` at a time, so a burst
/// of logins queues instead of starving chat traffic of CPU.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(permits: usize) -> PasswordHasher {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// One hasher per core: logins use the machine, chat keeps the reactor.
    pub fn per_core() -> PasswordHasher {
        PasswordHasher::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        )
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::PoolClosed)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(job))
            .await
            .map_err(|_| AuthError::PoolClosed)
    }

    pub async fn verify(
        &self,
        password: String,
        encoded: String,
    ) -> Result<PasswordCheck, AuthError> {
        self.run(move || hashers::verify_password(&password, &encoded))
            .await
    }

    pub async fn make(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hashers::make_password(&password)).await
    }
}

/// `ModelBackend.authenticate`: the user whose password matches and who is active, else `None`.
/// An unknown user still costs one hash (Django's timing equalisation), and a correct password
/// whose hash `must_update` is re-hashed and saved before the login, as Django's setter does.
pub async fn authenticate(
    db: &Db,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
) -> Result<Option<User>, AuthError> {
    let Some(mut user) = db.user_by_username(username).await? else {
        hasher.make(password.to_owned()).await?;
        return Ok(None);
    };
    let check = hasher
        .verify(password.to_owned(), user.password.clone())
        .await?;
    if !check.correct {
        return Ok(None);
    }
    if check.must_update {
        let upgraded = hasher.make(password.to_owned()).await?;
        db.set_password(user.id, &upgraded).await?;
        tracing::info!(user = %user.username, "upgraded the stored password hash");
        user.password = upgraded;
    }
    Ok(user.is_active.then_some(user))
}
