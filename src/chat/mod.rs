//! Real-time chat: the legacy WebSocket JSON, the local room hub and the per-socket consumer.

pub mod clock;
pub mod consumer;
pub mod frame;
pub mod hub;
pub mod room_name;

pub use room_name::RoomName;
