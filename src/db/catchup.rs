//! The catch-up read of a `ferrochat.v1` socket (docs/protocol.md): the messages of a room a
//! reconnecting client may have missed, newest first from the database, oldest first to it.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::datetime::{from_mysql, from_sqlite, to_mysql, to_sqlite};
use super::messages::StoredMessage;
use super::{Db, DbError};

/// What a client that has every message up to `after` may lack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catchup {
    /// Ascending ids.
    pub messages: Vec<StoredMessage>,
    /// More messages above `after` exist than were returned: the oldest of them are left out.
    pub gap: bool,
}

/// A time no message has: selects nothing when there is no message at or below `after`
/// (year 9999, which every backend's datetime type holds).
fn never() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn parse_sqlite(text: &str) -> Result<DateTime<Utc>, DbError> {
    from_sqlite(text).map_err(|e| DbError::InvalidData {
        column: "chatapp_message.timestamp",
        detail: e.to_string(),
    })
}

impl Db {
    /// The room's messages with an id above `after` (the newest `max` of them) and those at or
    /// below it saved at most `window` before the newest message at or below `after` (ids are
    /// allocated at insert, not at commit: a lower id may have committed after the client saw a
    /// higher one). Authors whose row is gone are left out, as the room page does.
    pub async fn messages_after(
        &self,
        room_id: i64,
        after: i64,
        window: TimeDelta,
        max: usize,
    ) -> Result<Catchup, DbError> {
        const ANCHOR: &str = "SELECT timestamp FROM chatapp_message WHERE room_id = ? AND id <= ? \
                              ORDER BY id DESC LIMIT 1";
        const ANCHOR_PG: &str = "SELECT timestamp FROM chatapp_message WHERE room_id = $1 \
                                 AND id <= $2 ORDER BY id DESC LIMIT 1";
        const ROWS: &str = "SELECT m.id, m.content, m.timestamp, u.username FROM chatapp_message m \
                            JOIN auth_user u ON u.id = m.user_id WHERE m.room_id = ? \
                            AND (m.id > ? OR m.timestamp >= ?) ORDER BY m.id DESC LIMIT ?";
        const ROWS_PG: &str = "SELECT m.id, m.content, m.timestamp, u.username \
                               FROM chatapp_message m JOIN auth_user u ON u.id = m.user_id \
                               WHERE m.room_id = $1 AND (m.id > $2 OR m.timestamp >= $3) \
                               ORDER BY m.id DESC LIMIT $4";
        // One more than `max` tells whether something was left out.
        let limit = i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX);
        let mut newest_first: Vec<StoredMessage> = match self {
            Db::Sqlite(p) => {
                let anchor: Option<String> = sqlx::query_scalar(ANCHOR)
                    .bind(room_id)
                    .bind(after)
                    .fetch_optional(p)
                    .await?;
                let since = match anchor {
                    Some(ts) => parse_sqlite(&ts)? - window,
                    None => never(),
                };
                // Django's SQLite text sorts as the time it names (fixed-width fields, the
                // fraction only ever longer).
                let rows: Vec<(i64, String, String, String)> = sqlx::query_as(ROWS)
                    .bind(room_id)
                    .bind(after)
                    .bind(to_sqlite(&since))
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.into_iter()
                    .map(|(id, content, ts, username)| {
                        Ok(StoredMessage {
                            id,
                            content,
                            timestamp: parse_sqlite(&ts)?,
                            username,
                        })
                    })
                    .collect::<Result<_, DbError>>()?
            }
            Db::Postgres(p) => {
                let anchor: Option<DateTime<Utc>> = sqlx::query_scalar(ANCHOR_PG)
                    .bind(room_id)
                    .bind(after)
                    .fetch_optional(p)
                    .await?;
                let since = anchor.map_or_else(never, |ts| ts - window);
                sqlx::query_as::<_, (i64, String, DateTime<Utc>, String)>(ROWS_PG)
                    .bind(room_id)
                    .bind(after)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(StoredMessage::from)
                    .collect()
            }
            Db::MySql(p) => {
                let anchor: Option<chrono::NaiveDateTime> = sqlx::query_scalar(ANCHOR)
                    .bind(room_id)
                    .bind(after)
                    .fetch_optional(p)
                    .await?;
                let since = anchor.map_or_else(never, |ts| from_mysql(ts) - window);
                sqlx::query_as::<_, (i64, String, chrono::NaiveDateTime, String)>(ROWS)
                    .bind(room_id)
                    .bind(after)
                    .bind(to_mysql(&since))
                    .bind(limit)
                    .fetch_all(p)
                    .await?
                    .into_iter()
                    .map(|(id, content, ts, username)| StoredMessage {
                        id,
                        content,
                        timestamp: from_mysql(ts),
                        username,
                    })
                    .collect()
            }
        };
        // Cut at `max`: a gap only if a message above `after` was cut (the window's own
        // messages at or below it are a courtesy).
        let mut gap = false;
        if newest_first.len() > max {
            gap = newest_first[max..].iter().any(|m| m.id > after);
            newest_first.truncate(max);
        }
        newest_first.reverse();
        Ok(Catchup {
            messages: newest_first,
            gap,
        })
    }
}
