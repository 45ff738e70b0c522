//! What a message may cost its sender, checked before anything is
//! delivered: the socket's delivery allowance in bytes (a message's size
//! times its recipients, see [`limits`](super::limits)), and the daily file
//! quota of its sender (FILE_QUOTA_MB_PER_DAY), counted in the account store
//! so every instance of a deployment charges the same counter.

use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::limits::delivery_cost;
use super::socket_state::SocketState;
use super::{Chat, ChatError};
use crate::domain::{Target, Text};
use crate::metrics::metrics;

/// The window of the file quota: a day from the first file.
const QUOTA_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Charges a message of `text` and `file_bytes` going to `target`:
/// first the socket's delivery allowance (`rate_limited`), then, for a file,
/// the quota under `quota_key` (`quota_exceeded`). The allowance comes first
/// so that a refused burst costs no quota; a refused file is not counted.
pub(super) async fn charge_message<A: Adapter>(
    chat: &Chat,
    socket: &SocketRef<A>,
    target: &Target,
    text: Option<&Text>,
    file_bytes: usize,
    quota_key: &str,
) -> Result<(), ChatError> {
    let recipients = recipients(chat, target, file_bytes > 0).await?;
    let cost = delivery_cost(text.map_or(0, |text| text.as_str().len()) + file_bytes, recipients);
    if let Err(retry_in) = SocketState::of(socket).charge_delivery(cost) {
        metrics().rate_limited();
        return Err(ChatError::DeliveryLimited { retry_in });
    }
    let limit = chat.policy().file_quota_bytes;
    if file_bytes == 0 || limit == 0 {
        return Ok(());
    }
    let charge = chat.accounts().charge(quota_key, file_bytes as u64, limit, QUOTA_WINDOW).await?;
    if !charge.accepted {
        tracing::info!(key = quota_key, used = charge.used, limit, "file refused: daily quota reached");
        return Err(ChatError::QuotaExceeded { limit, used: charge.used, resets_in: charge.resets_in });
    }
    Ok(())
}

/// How many people a message reaches. A room's members are counted only
/// for a file (one store read): a text is at most 16 KB, and counting would
/// add a Redis round trip to every room message.
async fn recipients(chat: &Chat, target: &Target, has_file: bool) -> Result<usize, ChatError> {
    Ok(match target {
        Target::Room(room) if has_file => chat.store().room_size(room).await?.saturating_sub(1),
        Target::Room(_) | Target::User(_) => 1,
        Target::Users(users) => users.len(),
    })
}
