//! What an admin change means outside the database: a deactivated user's open sockets close on
//! every ferrochat node (their sessions already stop validating, as Django's `get_user` checks
//! `is_active`); deleted chat messages vanish from open `ferrochat.v1` screens.

use crate::django::room_name::RoomName;
use crate::web::AppState;

/// Tells every node's v1 sockets in the messages' rooms to drop them (`delete` frames).
pub fn messages_deleted(state: &AppState, messages: &[(i64, String)]) {
    let named: Vec<(i64, RoomName)> = messages
        .iter()
        // A room the admin renamed to a name sockets cannot join has no socket to tell.
        .filter_map(|(id, room)| Some((*id, RoomName::parse(room).ok()?)))
        .collect();
    if !named.is_empty() {
        state.live.deleted(&named);
    }
}

/// Closes `user_id`'s sockets on every node; failures are logged (the sessions are already dead).
pub async fn user_deactivated(state: &AppState, user_id: i64) {
    tracing::info!(
        user_id,
        "user deactivated in the admin: closing their sockets"
    );
    state.chat.layer.disconnect_users(&[user_id]).await;
}
