//! The in-process channel layer (`channels.layers.InMemoryChannelLayer`'s role): one node, and a
//! room message goes straight to the local hub, serialized once and shared by every socket.

use crate::ops::metrics::metrics;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::hub::{Hub, RoomChange};
use crate::django::chat_json::ChatEvent;
use crate::django::room_name::RoomName;

use super::{ChannelLayer, LayerError, LayerKind};

pub struct MemoryLayer {
    hub: Arc<Hub>,
}

impl MemoryLayer {
    /// The layer over `hub`. A single node has no group to register with, so room openings
    /// and closings are only logged (the hooks a distributed layer uses).
    pub fn start(hub: Arc<Hub>, mut changes: mpsc::UnboundedReceiver<RoomChange>) -> MemoryLayer {
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                match change {
                    RoomChange::Opened(room) => {
                        tracing::debug!(room = %room, "first local socket joined")
                    }
                    RoomChange::Closed(room) => {
                        tracing::debug!(room = %room, "last local socket left")
                    }
                }
            }
        });
        MemoryLayer { hub }
    }
}

impl ChannelLayer for MemoryLayer {
    fn kind(&self) -> LayerKind {
        LayerKind::Memory
    }

    fn group_send<'a>(
        &'a self,
        room: &'a RoomName,
        event: &'a ChatEvent,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            // In-process, each message is sent and received at once.
            let m = metrics();
            m.channel_layer_sent.inc();
            m.channel_layer_received.inc();
            // One serialization; every socket's queue holds a reference to the same bytes.
            let reached = self.hub.deliver(room, Utf8Bytes::from(event.to_frame()));
            tracing::trace!(room = %room, reached, "delivered");
            Ok(())
        })
    }

    fn disconnect_users<'a>(&'a self, user_ids: &'a [i64]) -> BoxFuture<'a, ()> {
        self.hub.disconnect_users(user_ids);
        Box::pin(async {})
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[tokio::test]
    async fn group_send_reaches_the_room_with_one_shared_frame() {
        let (hub, changes) = Hub::new(8);
        let layer = MemoryLayer::start(hub.clone(), changes);
        let lobby = RoomName::parse("lobby").expect("valid");
        let other = RoomName::parse("other").expect("valid");
        let mut a = hub.join(&lobby);
        let mut b = hub.join(&lobby);
        let mut c = hub.join(&other);
        let at = Utc
            .with_ymd_and_hms(2026, 11, 24, 4, 36, 42)
            .single()
            .expect("valid time");
        let event = ChatEvent::new(3, "hi".into(), "ann".into(), &at);
        layer.group_send(&lobby, &event).await.expect("sent");
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        assert_eq!(a.next_batch(8, &mut fa).await, Ok(1));
        assert_eq!(b.next_batch(8, &mut fb).await, Ok(1));
        assert_eq!(fa[0].as_str(), event.to_frame());
        // The same allocation, not a copy per socket.
        assert_eq!(fa[0].as_str().as_ptr(), fb[0].as_str().as_ptr());
        assert_eq!(
            c.take(8, &mut Vec::new()),
            Ok(0),
            "another room hears nothing"
        );
        assert_eq!(layer.kind(), LayerKind::Memory);
    }
}
