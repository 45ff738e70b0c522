//! Every instance of a deployment must use the same packet parser
//! (PARSER): the adapter relays socketioxide values already encoded by the
//! sending instance's parser, which an instance on the other parser cannot
//! send to its clients. Nothing in the relay says so, so each instance
//! publishes its parser beside its heartbeat, in one hash
//! (`<REDIS_PREFIX>:parsers`: instance id → "parser milliseconds"), reads
//! its live peers', and logs an error naming both parsers when one differs.

use std::collections::HashSet;
use std::time::Duration;

use fred::prelude::{Client, HashesInterface};
use fred::types::scripts::Script;

use crate::config::PacketParser;
use crate::metrics::metrics;
use crate::store::REDIS_TIMEOUT;

/// This instance's entry in the deployment's parser registry.
#[derive(Clone)]
pub struct ParserCheck {
    client: Client,
    script: Script,
    /// The registry hash.
    key: String,
    /// This instance's id, as its heartbeat names it.
    instance: String,
    parser: PacketParser,
    /// An entry older than this belongs to an instance that is gone.
    ttl: Duration,
    /// Peers already reported, so each is logged once while it differs.
    reported: HashSet<String>,
}

impl ParserCheck {
    /// The check for `instance`, which speaks `parser`, under `prefix`.
    pub fn new(client: Client, prefix: &str, instance: &str, parser: PacketParser, ttl: Duration) -> Self {
        Self {
            client,
            script: Script::from_lua(include_str!("parsers.lua")),
            key: format!("{prefix}:parsers"),
            instance: instance.to_owned(),
            parser,
            ttl,
            reported: HashSet::new(),
        }
    }

    /// Publishes this instance's parser and compares it with the live
    /// peers': a peer newly seen on another parser is logged as an error.
    /// Returns the peers on another parser, as (instance id, parser).
    pub async fn run(&mut self) -> Vec<(String, String)> {
        let keys = vec![self.key.clone()];
        let args =
            vec![self.instance.clone(), self.parser.as_str().to_owned(), self.ttl.as_millis().to_string()];
        let call = self.script.evalsha_with_reload::<Vec<String>, _, _>(&self.client, keys, args);
        let flat = match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(flat)) => flat,
            Ok(Err(err)) => return self.failed(&err.to_string()),
            Err(_) => return self.failed(&format!("no answer within {REDIS_TIMEOUT:?}")),
        };
        let others: Vec<(String, String)> =
            flat.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        for (peer, peer_parser) in &others {
            if !self.reported.contains(peer) {
                tracing::error!(
                    %peer,
                    peer_parser = %peer_parser,
                    parser = %self.parser,
                    "instance {peer} uses PARSER={peer_parser}, this instance PARSER={}: every instance of a \
                     deployment must use the same parser (events relayed between them cannot reach their clients)",
                    self.parser,
                );
            }
        }
        self.reported = others.iter().map(|(peer, _)| peer.clone()).collect();
        metrics().set_mismatched_peers(others.len());
        others
    }

    /// Logs a failed call; the next round retries. Peers stay as reported.
    fn failed(&self, error: &str) -> Vec<(String, String)> {
        metrics().redis_error();
        tracing::warn!(error, "could not compare PARSER with the other instances");
        Vec::new()
    }

    /// Removes this instance's entry, when it leaves the cluster.
    pub async fn withdraw(&self) {
        let removed = tokio::time::timeout(
            REDIS_TIMEOUT,
            self.client.hdel::<i64, _, _>(&self.key, self.instance.as_str()),
        )
        .await;
        if !matches!(removed, Ok(Ok(_))) {
            tracing::debug!("could not remove this instance's PARSER entry; it expires with its heartbeat");
        }
    }
}
