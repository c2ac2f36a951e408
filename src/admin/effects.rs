//! What an admin change means outside the database: a deactivated user's open sockets close on
//! every ferrochat node (their sessions already stop validating, as Django's `get_user` checks
//! `is_active`).

use crate::web::AppState;

/// Closes `user_id`'s sockets on every node; failures are logged (the sessions are already dead).
pub async fn user_deactivated(state: &AppState, user_id: i64) {
    tracing::info!(
        user_id,
        "user deactivated in the admin: closing their sockets"
    );
    state.chat.layer.disconnect_users(&[user_id]).await;
}
