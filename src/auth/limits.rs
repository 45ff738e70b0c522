//! The limits on login and registration attempts, counted in the account
//! store so that they hold across instances.
//!
//! Three counters stand between a request and a password check:
//!
//! 1. **Per address**: [`ATTEMPTS_PER_ADDRESS`] logins and registrations a
//!    minute from one address, whatever the name.
//! 2. **Per name and address**: [`FAILURES_PER_NAME_AND_ADDRESS`] attempts
//!    for one name from one address per [`FAILURE_WINDOW`]. The attempt is
//!    *reserved* (counted atomically) before the password is checked, so
//!    however many requests race, at most that many passwords are checked.
//!    A success forgets the count; a request refused before its check gives
//!    its reservation back. It locks that address out of that name only:
//!    the owner logging in from anywhere else is not held back.
//! 3. **Per name**: beyond [`FAILURES_PER_NAME_BEFORE_BACKOFF`] attempts for
//!    one name in a window from all addresses together (a distributed
//!    guess), the name is admitted at most once every D, D doubling from
//!    [`FIRST_BACKOFF`] to [`MAX_BACKOFF`] as the attempts go on. This only
//!    slows, it never locks, and two kinds of attempts pass it by, so that
//!    an attack does not keep the owner out:
//!    - from an address *trusted* for the name (a successful login for it
//!      from there in the last [`TRUSTED_FOR`]): its owner's usual places;
//!    - the first attempt from an address for the name in a window: the
//!      owner's first try from a new place. An attacker gets one guess per
//!      address and window this way, instead of ten.
//!
//! An address's wait is given as the time until its window closes (or the
//! backoff ends), as `Retry-After`.
//!
//! These are fixed windows counted in the account store (Redis scripts, so
//! every instance sees one count), not token buckets in memory: `governor`,
//! whose state lives in one process, would let N instances admit N times
//! the attempts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::AuthError;
use crate::domain::Username;
use crate::net::AddressKey;
use crate::store::{AccountStore, StoreError};

/// Login and registration attempts one address may make per [`ADDRESS_WINDOW`].
pub const ATTEMPTS_PER_ADDRESS: u64 = 30;
/// The window for attempts per address.
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
/// Login attempts for one name from one address per [`FAILURE_WINDOW`]
/// (successful ones are forgotten).
pub const FAILURES_PER_NAME_AND_ADDRESS: u64 = 10;
/// The window for failed logins, per name and address and per name.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed (or running) logins for one name, from all addresses together, per
/// [`FAILURE_WINDOW`] before the name's backoff starts.
pub const FAILURES_PER_NAME_BEFORE_BACKOFF: u64 = 50;
/// The backoff's first delay between attempts for a name; it doubles with
/// each attempt admitted past the ceiling.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay the backoff reaches.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Addresses whose first try for one name passes the name's backoff by, per
/// [`FAILURE_WINDOW`]: beyond it (an attacker with many addresses, such as
/// the /64s of one IPv6 /48) first tries wait their turn like the rest.
pub const FIRST_TRIES_PER_NAME: u64 = 100;
/// How long an address stays trusted for a name after a successful login
/// (its attempts pass the name's backoff by).
pub const TRUSTED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// The attempt counters, over the account store.
pub(super) struct Limits {
    accounts: Arc<dyn AccountStore>,
}

/// A login attempt past the limits: what it reserved, to be settled once
/// its password has been checked, or was not.
pub(super) struct Admission {
    /// The address's counter.
    address: String,
    /// The name-and-address counter.
    pair: String,
    /// The name's counter, unless the address is trusted.
    name: Option<String>,
    /// The address's trust for the name.
    trust: String,
}

impl Limits {
    pub(super) fn new(accounts: Arc<dyn AccountStore>) -> Self {
        Self { accounts }
    }

    /// Counts an attempt from `from`; refuses past [`ATTEMPTS_PER_ADDRESS`].
    pub(super) async fn address(&self, from: IpAddr) -> Result<(), AuthError> {
        let key = address_key(from);
        let attempts = self.accounts.count_attempt(&key, ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW).await?;
        if !attempts.counted {
            tracing::warn!(%from, count = attempts.count, "login attempts per address over the limit");
            return Err(AuthError::RateLimited(attempts.resets_in));
        }
        Ok(())
    }

    /// Reserves a login attempt for `user` from `from`, or refuses it.
    pub(super) async fn admit(&self, user: &Username, from: IpAddr) -> Result<Admission, AuthError> {
        // An address key ends at its first '/' (an IPv6 key is `<prefix>::/64`),
        // and names come after it: the keys cannot collide, whatever the name.
        let pair = format!("fail:{}/{}", AddressKey::of(from), user.key());
        let attempts =
            self.accounts.count_attempt(&pair, FAILURES_PER_NAME_AND_ADDRESS, FAILURE_WINDOW).await?;
        if !attempts.counted {
            tracing::warn!(user = %user, %from, "failed logins for a name from an address over the limit");
            return Err(AuthError::RateLimited(attempts.resets_in));
        }
        let trust = format!("trusted:{}/{}", AddressKey::of(from), user.key());
        let mut admission = Admission { address: address_key(from), pair, name: None, trust };
        let first_try = attempts.count == 1;
        match self.past_the_name(user, first_try, &mut admission).await {
            Ok(()) => Ok(admission),
            Err(err) => {
                // Refused by the name's backoff: the address's attempt stands
                // (polling the backoff spends its allowance), the rest not.
                self.release(&admission).await;
                Err(err)
            }
        }
    }

    /// The per-name ceiling: counts the attempt for the name unless the
    /// address is trusted, and holds it to the backoff past the ceiling.
    async fn past_the_name(
        &self,
        user: &Username,
        first_try: bool,
        admission: &mut Admission,
    ) -> Result<(), AuthError> {
        if self.accounts.attempts(&admission.trust).await? > 0 {
            return Ok(());
        }
        let name = format!("name:{}", user.key());
        let attempts = self.accounts.count_attempt(&name, u64::MAX, FAILURE_WINDOW).await?;
        admission.name = Some(name);
        let past = attempts.count.saturating_sub(FAILURES_PER_NAME_BEFORE_BACKOFF);
        if past == 0 {
            return Ok(());
        }
        // An address's first try for the name passes by (the owner's first
        // try from a new place is not held back), a bounded number of times.
        if first_try {
            let firsts = format!("first:{}", user.key());
            if self.accounts.count_attempt(&firsts, FIRST_TRIES_PER_NAME, FAILURE_WINDOW).await?.counted {
                return Ok(());
            }
        }
        // Whoever opens the gate holds it for D; every other attempt until
        // then is refused (and given back), on every instance.
        let delay = backoff(past);
        let gate = self.accounts.count_attempt(&format!("gate:{}", user.key()), 1, delay).await?;
        if !gate.counted {
            tracing::debug!(user = %user, "login held back by the name's backoff");
            return Err(AuthError::RateLimited(gate.resets_in));
        }
        // At most once per delay and name: the log is as slow as the guesses.
        tracing::warn!(user = %user, attempts = attempts.count, ?delay, "many failed logins for a name: backing off");
        Ok(())
    }

    /// The password was right: forget the address's failures for the name
    /// and trust the address for it.
    pub(super) async fn succeeded(&self, admission: &Admission) {
        let accounts = &self.accounts;
        settle("forget failures", accounts.clear_attempts(&admission.pair).await);
        if let Some(name) = &admission.name {
            settle("give back an attempt", accounts.uncount_attempt(name).await);
        }
        // Cleared first, so that the trust runs from this login.
        settle("trust an address", accounts.clear_attempts(&admission.trust).await);
        settle("trust an address", accounts.count_attempt(&admission.trust, 1, TRUSTED_FOR).await.map(drop));
    }

    /// The password was never checked (the server was busy): every
    /// reservation is given back, so a busy server spends no allowance.
    pub(super) async fn unchecked(&self, admission: &Admission) {
        settle("give back an attempt", self.accounts.uncount_attempt(&admission.address).await);
        self.release(admission).await;
    }

    /// A registration from `from` was refused before its password was
    /// hashed (the server was busy): the address's attempt is given back.
    pub(super) async fn unhashed(&self, from: IpAddr) {
        settle("give back an attempt", self.accounts.uncount_attempt(&address_key(from)).await);
    }

    /// Gives back the attempt for the name, from the address and in all.
    async fn release(&self, admission: &Admission) {
        settle("give back an attempt", self.accounts.uncount_attempt(&admission.pair).await);
        if let Some(name) = &admission.name {
            settle("give back an attempt", self.accounts.uncount_attempt(name).await);
        }
    }
}

/// The counter of attempts from an address (an IPv6 client by its /64).
fn address_key(from: IpAddr) -> String {
    format!("addr:{}", AddressKey::of(from))
}

/// The delay between admitted attempts for a name `past` attempts beyond
/// its ceiling: [`FIRST_BACKOFF`], doubling, at most [`MAX_BACKOFF`].
fn backoff(past: u64) -> Duration {
    let doublings = u32::try_from(past.saturating_sub(1)).unwrap_or(u32::MAX).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Settling is best effort: the answer to the login stands either way.
fn settle(what: &str, result: Result<(), StoreError>) {
    if let Err(err) = result {
        tracing::warn!(operation = what, error = %err, "login attempt counter not updated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (1..=8).map(|past| backoff(past).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u64::MAX), MAX_BACKOFF);
    }
}
