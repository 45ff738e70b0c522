//! The [`Store`] contract. Every test body is generic over the backend and
//! instantiated once per implementation by `store_contract!`, so the memory
//! and Redis stores are held to exactly the same behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;

use chatwire::domain::roster::RosterQuery;
use chatwire::domain::{Conversation, IdGenerator, Message, RoomName, Target, Text, UserId, Username};
use chatwire::store::{HistoryPage, MemoryStore, OwnerProof, RedisStore, SocketKey, Store, StoreError};
use common::redis::{RedisCluster, RedisServer};

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}
fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}
fn socket(instance: &str, sid: &str) -> SocketKey {
    SocketKey { instance: instance.into(), sid: sid.into() }
}
fn proof(secret: &str) -> OwnerProof {
    OwnerProof(secret.into())
}

/// Keeps whatever backs a store (a redis-server process) alive for a test.
type Guard = Box<dyn std::any::Any + Send>;

/// Builds a fresh, empty store keeping `history_limit` messages per conversation.
type Factory = fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = (Arc<dyn Store>, Guard)>>>;

/// A Redis store over a connected client, keys under a fresh prefix.
async fn redis_store(url: String, guard: Guard, limit: usize) -> (Arc<dyn Store>, Guard) {
    let target = chatwire::cluster::RedisTarget::parse(&url).unwrap();
    let client = chatwire::cluster::client_builder(&target).build().unwrap();
    fred::prelude::ClientLike::init(&client).await.unwrap();
    (Arc::new(RedisStore::new(client, "contract", "test-instance", limit)) as Arc<dyn Store>, guard)
}

async fn login_claims_a_name_once(new: Factory) {
    let (store, _guard) = new(100).await;
    let first = store.login(&user("Alice"), &proof("p1"), &socket("i1", "s1")).await.unwrap();
    assert!(first.first_socket);
    assert_eq!(first.num_users, 1);
    assert_eq!(first.user.as_str(), "Alice");

    let taken = store.login(&user("alice"), &proof("p2"), &socket("i1", "s2")).await;
    assert!(matches!(taken, Err(StoreError::NameTaken(_))), "{taken:?}");

    let shared = store.login(&user("ALICE"), &proof("p1"), &socket("i2", "s3")).await.unwrap();
    assert!(!shared.first_socket, "same proof: a second socket of the same user");
    assert_eq!(shared.num_users, 1);
    assert_eq!(shared.user.as_str(), "Alice", "the first spelling wins");
}

async fn logout_frees_the_name_after_the_last_socket(new: Factory) {
    let (store, _guard) = new(100).await;
    store.login(&user("alice"), &proof("p"), &socket("i", "a1")).await.unwrap();
    store.login(&user("alice"), &proof("p"), &socket("i", "a2")).await.unwrap();
    store.login(&user("bob"), &proof("q"), &socket("i", "b1")).await.unwrap();

    let first = store.logout(&socket("i", "a1")).await.unwrap().unwrap();
    assert!(!first.last_socket);
    assert_eq!(first.num_users, 2);
    let last = store.logout(&socket("i", "a2")).await.unwrap().unwrap();
    assert!(last.last_socket);
    assert_eq!(last.num_users, 1);
    assert_eq!(last.user, user("alice"));
    assert_eq!(store.logout(&socket("i", "a2")).await.unwrap(), None, "already gone");

    let again = store.login(&user("alice"), &proof("other"), &socket("i", "a3")).await.unwrap();
    assert!(again.first_socket, "the name is free for anyone");
}

async fn online_users_are_sorted_counted_and_found_by_any_case(new: Factory) {
    let (store, _guard) = new(100).await;
    for (name, sid) in [("carol", "c"), ("Alice", "a"), ("bob", "b")] {
        store.login(&user(name), &proof(name), &socket("i", sid)).await.unwrap();
    }
    assert_eq!(roster(&*store, RosterQuery::first_page()).await, (names(&["Alice", "bob", "carol"]), false));
    let found = store.find_online(&[user("CAROL"), user("alice")]).await.unwrap();
    assert_eq!(found.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(), ["carol", "Alice"]);
    assert_eq!(found[0].1, proof("carol").user_id(), "with the identity holding the name");
    assert_eq!(found[1].1, proof("Alice").user_id());
    let missing = store.find_online(&[user("bob"), user("ghost")]).await;
    assert_eq!(missing, Err(StoreError::UnknownUser("ghost".into())));
    let holders = store.holders_of(&[user("ghost"), user("ALICE")]).await.unwrap();
    assert_eq!(holders, [None, Some((user("Alice"), proof("Alice")))]);
    assert_eq!(holders[1].as_ref().map(|(u, _)| u.as_str()), Some("Alice"), "spelled as logged in");
    assert_eq!(store.holders_of(&[]).await.unwrap(), []);
    store.login(&user("alice"), &proof("Alice"), &socket("i", "a2")).await.unwrap();
    assert_eq!(store.count_online().await.unwrap(), 3, "users are counted, not sockets");
    store.logout(&socket("i", "b")).await.unwrap();
    assert_eq!(store.count_online().await.unwrap(), 2);
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// The names of one page of the roster, and whether more follow.
async fn roster(store: &dyn Store, query: RosterQuery) -> (Vec<String>, bool) {
    let page = store.roster(&query).await.unwrap();
    (page.users.iter().map(|u| u.to_string()).collect(), page.more)
}

async fn the_roster_pages_and_searches_the_online_list(new: Factory) {
    let (store, _guard) = new(100).await;
    let online = ["dave", "Alice", "alicia", "mallory", "Bob", "ál", "carol"];
    for (i, name) in online.iter().enumerate() {
        store.login(&user(name), &proof(name), &socket("i", &format!("s{i}"))).await.unwrap();
    }
    // A second socket of the same user, spelled otherwise, is not a second entry.
    store.login(&user("ALICE"), &proof("Alice"), &socket("i", "again")).await.unwrap();
    let page = |after: Option<&str>, prefix: Option<&str>, limit: u64| {
        RosterQuery::parse(after, prefix, Some(limit)).unwrap()
    };
    assert_eq!(roster(&*store, page(None, None, 3)).await, (names(&["Alice", "alicia", "Bob"]), true));
    assert_eq!(
        roster(&*store, page(Some("Bob"), None, 3)).await,
        (names(&["carol", "dave", "mallory"]), true)
    );
    assert_eq!(roster(&*store, page(Some("mallory"), None, 3)).await, (names(&["ál"]), false));
    assert_eq!(roster(&*store, page(None, Some("ALI"), 2)).await, (names(&["Alice", "alicia"]), false));
    assert_eq!(roster(&*store, page(Some("alice"), Some("ali"), 1)).await, (names(&["alicia"]), false));
    assert_eq!(roster(&*store, page(None, Some("zz"), 5)).await, (names(&[]), false));

    // Only a user's last socket takes them off the roster.
    store.logout(&socket("i", "s1")).await.unwrap();
    assert_eq!(roster(&*store, page(None, Some("alice"), 5)).await.0, ["Alice"]);
    store.logout(&socket("i", "again")).await.unwrap();
    store.logout(&socket("i", "s0")).await.unwrap();
    assert_eq!(
        roster(&*store, RosterQuery::first_page()).await.0,
        ["alicia", "Bob", "carol", "mallory", "ál"]
    );
    // Back under another spelling, listed as now spelled.
    store.login(&user("ALICE"), &proof("x"), &socket("i", "s9")).await.unwrap();
    assert_eq!(roster(&*store, page(None, Some("alice"), 5)).await.0, ["ALICE"]);
}

async fn rooms_track_members_across_sockets(new: Factory) {
    let (store, _guard) = new(100).await;
    store.login(&user("alice"), &proof("p"), &socket("i", "a1")).await.unwrap();
    store.login(&user("alice"), &proof("p"), &socket("j", "a2")).await.unwrap();
    store.login(&user("bob"), &proof("q"), &socket("i", "b1")).await.unwrap();

    let join = store.join_room(&room("general"), &socket("i", "a1")).await.unwrap();
    assert!(join.first_for_user);
    assert_eq!(join.members, [user("alice")]);
    let second_tab = store.join_room(&room("general"), &socket("j", "a2")).await.unwrap();
    assert!(!second_tab.first_for_user);
    let again = store.join_room(&room("general"), &socket("i", "a1")).await.unwrap();
    assert!(!again.first_for_user, "joining twice changes nothing");
    let bob = store.join_room(&room("general"), &socket("i", "b1")).await.unwrap();
    assert_eq!(bob.members, [user("alice"), user("bob")]);

    let left = store.leave_room(&room("general"), &socket("i", "a1")).await.unwrap();
    assert!(!left.last_for_user, "alice is still there through her other socket");
    let left = store.leave_room(&room("general"), &socket("j", "a2")).await.unwrap();
    assert!(left.last_for_user);
    let not_in = store.leave_room(&room("general"), &socket("j", "a2")).await;
    assert_eq!(not_in, Err(StoreError::NotInRoom("general".into())));

    let rooms = store.rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].members, [user("bob")]);
}

async fn logout_reports_the_rooms_the_user_left(new: Factory) {
    let (store, _guard) = new(100).await;
    store.login(&user("alice"), &proof("p"), &socket("i", "a1")).await.unwrap();
    store.login(&user("alice"), &proof("p"), &socket("i", "a2")).await.unwrap();
    store.join_room(&room("one"), &socket("i", "a1")).await.unwrap();
    store.join_room(&room("two"), &socket("i", "a1")).await.unwrap();
    store.join_room(&room("two"), &socket("i", "a2")).await.unwrap();

    let logout = store.logout(&socket("i", "a1")).await.unwrap().unwrap();
    assert_eq!(logout.left_rooms, [room("one")], "still in `two` through a2");
    let rooms: Vec<String> = store.rooms().await.unwrap().iter().map(|r| r.room.to_string()).collect();
    assert_eq!(rooms, ["two"], "an empty room disappears");
}

async fn joining_needs_a_logged_in_socket(new: Factory) {
    let (store, _guard) = new(100).await;
    let result = store.join_room(&room("general"), &socket("i", "nobody")).await;
    assert!(matches!(result, Err(StoreError::NotLoggedIn(_))), "{result:?}");
}

fn message(ids: &IdGenerator, from: &str, target: Target, text: &str) -> Message {
    Message::new(ids.next(), user(from), target, Some(Text::parse(text).unwrap()), None)
}

async fn history_pages_and_caps(new: Factory) {
    let (store, _guard) = new(5).await;
    let ids = IdGenerator::new();
    let mut sent = Vec::new();
    for i in 0..8 {
        let m = message(&ids, "alice", Target::Room(room("general")), &format!("m{i}"));
        store.append_message(&Conversation::Room(room("general")), &m).await.unwrap();
        sent.push(m);
    }
    let conversation = Conversation::Room(room("general"));
    let page = |before: Option<usize>, after: Option<usize>, limit| HistoryPage {
        before: before.map(|i| sent[i].id),
        after: after.map(|i| sent[i].id),
        limit,
    };
    let texts = |messages: Vec<Message>| -> Vec<String> {
        messages.into_iter().map(|m| m.text.unwrap().as_str().to_owned()).collect()
    };
    assert_eq!(
        texts(store.history(&conversation, &page(None, None, 10)).await.unwrap()),
        ["m3", "m4", "m5", "m6", "m7"]
    );
    assert_eq!(texts(store.history(&conversation, &page(None, None, 2)).await.unwrap()), ["m6", "m7"]);
    assert_eq!(texts(store.history(&conversation, &page(Some(6), None, 2)).await.unwrap()), ["m4", "m5"]);
    assert_eq!(texts(store.history(&conversation, &page(None, Some(4), 2)).await.unwrap()), ["m5", "m6"]);
    assert_eq!(texts(store.history(&conversation, &page(Some(7), Some(4), 10)).await.unwrap()), ["m5", "m6"]);
    assert_eq!(
        texts(store.history(&conversation, &page(None, Some(0), 2)).await.unwrap()),
        ["m3", "m4"],
        "trimmed ones are gone"
    );
    let empty = Conversation::Room(room("empty"));
    assert!(store.history(&empty, &page(None, None, 10)).await.unwrap().is_empty());
}

async fn history_keeps_conversations_apart(new: Factory) {
    let (store, _guard) = new(100).await;
    let ids = IdGenerator::new();
    let (alice, bob, carol) = (UserId::account("alice"), UserId::guest("bob"), UserId::guest("carol"));
    let later_bob = UserId::guest("another bob");
    let to_bob = message(&ids, "alice", Target::User(user("bob")), "hi bob");
    let group = message(&ids, "alice", Target::Users(vec![user("bob"), user("carol")]), "hi both");
    let room_msg = message(&ids, "alice", Target::Room(room("general")), "hi room");
    let pair = Conversation::private(&alice, [&bob]);
    let trio = Conversation::private(&alice, [&bob, &carol]);
    let general = Conversation::Room(room("general"));
    for (conversation, m) in [(&pair, &to_bob), (&trio, &group), (&general, &room_msg)] {
        store.append_message(conversation, m).await.unwrap();
    }
    let all = HistoryPage { before: None, after: None, limit: 100 };
    let read = async |conversation: Conversation| store.history(&conversation, &all).await.unwrap();
    assert_eq!(read(Conversation::private(&bob, [&alice])).await, [to_bob]);
    assert_eq!(read(Conversation::private(&carol, [&bob, &alice])).await, [group]);
    assert_eq!(read(general).await, [room_msg]);
    assert!(
        read(Conversation::private(&later_bob, [&alice])).await.is_empty(),
        "another identity under the same name reads nothing"
    );
}

async fn concurrent_claims_of_one_name_have_one_winner(new: Factory) {
    let (store, _guard) = new(100).await;
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store.login(&user("contested"), &proof(&format!("p{i}")), &socket("i", &format!("s{i}"))).await
        })
    });
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => winners += 1,
            Err(StoreError::NameTaken(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(roster(&*store, RosterQuery::first_page()).await.0.len(), 1);
}

/// Instantiates every contract test for one backend.
macro_rules! store_contract {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            const NEW: Factory = $factory;
            #[tokio::test]
            async fn login_claims_a_name_once() {
                super::login_claims_a_name_once(NEW).await
            }
            #[tokio::test]
            async fn logout_frees_the_name_after_the_last_socket() {
                super::logout_frees_the_name_after_the_last_socket(NEW).await
            }
            #[tokio::test]
            async fn online_users_are_sorted_counted_and_found_by_any_case() {
                super::online_users_are_sorted_counted_and_found_by_any_case(NEW).await
            }
            #[tokio::test]
            async fn the_roster_pages_and_searches_the_online_list() {
                super::the_roster_pages_and_searches_the_online_list(NEW).await
            }
            #[tokio::test]
            async fn rooms_track_members_across_sockets() {
                super::rooms_track_members_across_sockets(NEW).await
            }
            #[tokio::test]
            async fn logout_reports_the_rooms_the_user_left() {
                super::logout_reports_the_rooms_the_user_left(NEW).await
            }
            #[tokio::test]
            async fn joining_needs_a_logged_in_socket() {
                super::joining_needs_a_logged_in_socket(NEW).await
            }
            #[tokio::test]
            async fn history_pages_and_caps() {
                super::history_pages_and_caps(NEW).await
            }
            #[tokio::test]
            async fn history_keeps_conversations_apart() {
                super::history_keeps_conversations_apart(NEW).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claims_of_one_name_have_one_winner() {
                super::concurrent_claims_of_one_name_have_one_winner(NEW).await
            }
        }
    };
}

store_contract!(memory, |limit| Box::pin(async move {
    (Arc::new(MemoryStore::new(limit)) as Arc<dyn Store>, Box::new(()) as Guard)
}));

/// During a rolling upgrade, instances from before the roster write the
/// users hash without it: their logouts leave entries behind, their logins
/// add none. Pages skip (and drop) the first; the second get an entry at
/// their next login.
#[tokio::test]
async fn roster_entries_of_instances_from_before_it_are_mended() {
    let server = RedisServer::start();
    let (store, _nothing) = redis_store(server.url(), Box::new(()), 100).await;
    for (name, sid) in [("alice", "a"), ("bob", "b")] {
        store.login(&user(name), &proof(name), &socket("i", sid)).await.unwrap();
    }
    // bob logged out through an old instance; carol logged in through one.
    assert_eq!(server.cli(&["HDEL", "{contract}:users", "bob"]).trim(), "1");
    assert_eq!(server.cli(&["HSET", "{contract}:users", "carol", "1\ncarol\ncarol"]).trim(), "1");
    assert_eq!(roster(&*store, RosterQuery::first_page()).await, (names(&["alice"]), false));
    assert_eq!(server.cli(&["ZCARD", "{contract}:roster"]).trim(), "1", "bob's entry is gone");

    store.login(&user("carol"), &proof("carol"), &socket("i", "c")).await.unwrap();
    assert_eq!(roster(&*store, RosterQuery::first_page()).await, (names(&["alice", "carol"]), false));
    store.logout(&socket("i", "c")).await.unwrap();
    assert_eq!(
        roster(&*store, RosterQuery::first_page()).await.0,
        ["alice", "carol"],
        "one socket of two left"
    );
}

store_contract!(redis, |limit| Box::pin(async move {
    let server = RedisServer::start();
    redis_store(server.url(), Box::new(server), limit).await
}));

store_contract!(redis_cluster, |limit| Box::pin(async move {
    let cluster = RedisCluster::start();
    redis_store(cluster.url(), Box::new(cluster), limit).await
}));
