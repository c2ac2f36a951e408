//! Real-time chat: the per-socket consumer (the legacy `ChatConsumer`), its `ferrochat.v1`
//! variant (`v1`, docs/protocol.md) and the clock their messages are stamped with. The JSON it speaks is `crate::django::chat_json`; rooms fan out
//! through `crate::layer` (the local hub and the channel layer).

pub mod clock;
pub mod consumer;
pub mod v1;
