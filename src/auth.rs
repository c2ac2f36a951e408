//! Authentication off the reactor: `ModelBackend.authenticate` with the password check on a
//! small pool of dedicated, low-priority threads (PBKDF2 at 720 000 iterations is ~85 ms of one
//! core).

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

use crate::db::users::User;
use crate::db::{Db, DbError};
use crate::django::hashers::{self, PasswordCheck};
use crate::ops::metrics::metrics;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the password hashing pool is gone")]
    PoolClosed,
}

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of hashing threads: a burst of logins takes the CPU chat traffic leaves
/// idle, and a chat message waiting for a core is not queued behind an 85 ms hash.
const HASHER_NICE: i32 = 10;

/// Runs password hashing on its own threads, one job per thread at a time (the rest queue), so
/// a burst of logins neither blocks the reactor nor takes every core from chat traffic.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
}

impl PasswordHasher {
    /// A pool of `threads` hashing threads, which live as long as a handle to the pool does.
    pub fn new(threads: usize) -> PasswordHasher {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("hasher-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job, never while
                        // running one; a poisoned lock cannot hold a half-taken job.
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match next {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        PasswordHasher { jobs }
    }

    /// One hashing thread per core but one (at least one): chat keeps a core even while
    /// logins pour in.
    pub fn for_this_machine() -> PasswordHasher {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        PasswordHasher::new(cores.saturating_sub(1).max(1))
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        self.jobs
            .send(Box::new(move || {
                let start = std::time::Instant::now();
                let result = span.in_scope(job);
                metrics()
                    .password_hash_seconds
                    .observe(start.elapsed().as_secs_f64());
                let _ = reply.send(result);
            }))
            .map_err(|_| AuthError::PoolClosed)?;
        answer.await.map_err(|_| AuthError::PoolClosed)
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

/// Gives the calling thread (only it: Linux keeps a nice value per thread) a lower priority.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers and only read their integer arguments.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, HASHER_NICE)
    };
    if result != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not lower the priority of a password hashing thread"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

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
