//! Connections per client address, capped. Counted twice: socket.io counts
//! the sockets it admits (MAX_CONNECTIONS_PER_ADDRESS, refused with the
//! `too_many_connections` code the client can read), and the engine gate
//! counts engine connections (twice that), because a connection refused at
//! the socket.io level stays open until its client closes it, and a hostile
//! client need not (see `http::engine_gate`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AddressKey;

/// Open connections per client address on this instance, capped. Addresses are
/// counted by [`AddressKey`] (an IPv6 client by its /64).
#[derive(Debug, Default)]
pub struct ConnectionsPerAddress {
    max: u32,
    open: Mutex<HashMap<AddressKey, u32>>,
}

impl ConnectionsPerAddress {
    /// At most `max` sockets per address; 0 means no limit.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::default() })
    }

    /// Whether there is a cap at all.
    pub fn is_capped(&self) -> bool {
        self.max > 0
    }

    /// A slot for one more socket from `key`, held until dropped; `None` if
    /// the address is at its limit.
    pub fn acquire(self: &Arc<Self>, key: AddressKey) -> Option<AddressSlot> {
        if self.max == 0 {
            return Some(AddressSlot { owner: None, key });
        }
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(key).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot { owner: Some(self.clone()), key })
    }
}

/// One socket's place in its address's count.
#[derive(Debug)]
pub struct AddressSlot {
    owner: Option<Arc<ConnectionsPerAddress>>,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(owner) = &self.owner else { return };
        let mut open = owner.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn key(ip: &str) -> AddressKey {
        AddressKey::of(ip.parse().unwrap())
    }

    #[test]
    fn addresses_get_their_slots_back() {
        let limit = ConnectionsPerAddress::new(2);
        let ip = key("127.0.0.1");
        let (a, b) = (limit.acquire(ip).unwrap(), limit.acquire(ip).unwrap());
        assert!(limit.acquire(ip).is_none(), "the third socket is refused");
        assert!(limit.acquire(key("127.0.0.2")).is_some(), "other addresses are not affected");
        drop(a);
        assert!(limit.acquire(ip).is_some(), "a closed socket frees its slot");
        drop(b);
        assert!(ConnectionsPerAddress::new(0).acquire(ip).is_some(), "0 means no limit");
    }

    #[test]
    fn one_ipv6_64_shares_one_count() {
        let limit = ConnectionsPerAddress::new(2);
        let _a = limit.acquire(key("2001:db8:1:2::1")).unwrap();
        let _b = limit.acquire(key("2001:db8:1:2:ffff::9")).unwrap();
        assert!(limit.acquire(key("2001:db8:1:2:abcd::1")).is_none(), "same /64, third socket");
        assert!(limit.acquire(key("2001:db8:1:3::1")).is_some(), "the next /64 is someone else");
    }
}
