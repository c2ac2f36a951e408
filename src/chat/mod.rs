//! Real-time chat: the per-socket consumer (the legacy `ChatConsumer`) and the clock its
//! messages are stamped with. The JSON it speaks is `crate::django::chat_json`; rooms fan out
//! through `crate::layer` (the local hub and the channel layer).

pub mod clock;
pub mod consumer;
