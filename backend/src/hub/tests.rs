//! Stories about the hub's state, told without sockets.

use proptest::prelude::*;
use rookery_common::{
    ChannelName, CloseCode, ConnectionId, ErrorCode, ServerMessage, StreamPosition, UserId,
    UserInfo, decode_server,
};
use serde_json::json;
use tokio::time::Instant;

use super::*;

struct Client {
    connection_id: ConnectionId,
    receiver: OutboxReceiver,
}

impl Client {
    fn received(&mut self) -> Vec<ServerMessage> {
        let mut messages = Vec::new();
        for frame in self.receiver.frames_now() {
            messages.push(decode_server(frame.as_str()).unwrap());
        }
        messages
    }
}

fn user(id: &str) -> UserInfo {
    UserInfo::new(UserId(id.into()), id.to_uppercase())
}

fn connect(state: &mut HubState, user_id: &str, capacity: usize) -> Client {
    let (outbox, receiver) = Outbox::new(capacity);
    let connection_id = state.connect(user(user_id), outbox);
    Client {
        connection_id,
        receiver,
    }
}

fn lobby() -> ChannelName {
    ChannelName::parse("chat:lobby").unwrap()
}

fn state() -> HubState {
    HubState::new(Namespaces::default(), HubLimits::default())
}

fn texts(messages: &[ServerMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Publication { publication, .. } => {
                Some(publication.data["text"].as_str().unwrap().to_owned())
            }
            _ => None,
        })
        .collect()
}

fn say(state: &mut HubState, client: &Client, text: &str, now: Instant) -> Option<StreamPosition> {
    state
        .publish(
            Publisher::Connection {
                id: client.connection_id,
                granted: false,
            },
            &lobby(),
            json!({ "text": text }),
            None,
            now,
            0,
        )
        .unwrap()
}

#[test]
fn bob_hears_alice() {
    let now = Instant::now();
    let mut state = state();
    let mut alice = connect(&mut state, "alice", 16);
    let mut bob = connect(&mut state, "bob", 16);
    state
        .subscribe(alice.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    state
        .subscribe(bob.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    say(&mut state, &alice, "hi bob", now);
    assert_eq!(texts(&bob.received()), ["hi bob"]);
    assert_eq!(
        texts(&alice.received()),
        ["hi bob"],
        "the publisher hears itself too"
    );
    state.check_invariants();
}

#[test]
fn two_tabs_of_one_user_are_one_member() {
    let now = Instant::now();
    let mut state = state();
    let mut watcher = connect(&mut state, "watcher", 16);
    state
        .subscribe(
            watcher.connection_id,
            None,
            &lobby(),
            None,
            None,
            false,
            now,
        )
        .unwrap();
    watcher.received();
    let tab1 = connect(&mut state, "ada", 16);
    let tab2 = connect(&mut state, "ada", 16);
    state
        .subscribe(tab1.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    state
        .subscribe(tab2.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    let joins: Vec<_> = watcher.received();
    assert_eq!(joins.len(), 1, "one join for two tabs: {joins:?}");
    assert!(matches!(&joins[0], ServerMessage::Join { member, .. } if member.user.0 == "ada"));
    assert_eq!(state.presence(&lobby()).unwrap().len(), 2);

    state.disconnect(tab1.connection_id);
    assert!(watcher.received().is_empty(), "ada still has a tab open");
    state.disconnect(tab2.connection_id);
    let leaves = watcher.received();
    assert!(matches!(&leaves[..], [ServerMessage::Leave { member, .. }] if member.user.0 == "ada"));
    state.check_invariants();
}

#[test]
fn resubscribing_from_a_position_recovers_exactly_the_gap() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 64);
    let mut bob = connect(&mut state, "bob", 64);
    let first = say(&mut state, &alice, "one", now).unwrap();
    say(&mut state, &alice, "two", now);
    say(&mut state, &alice, "three", now);
    state
        .subscribe(
            bob.connection_id,
            None,
            &lobby(),
            Some(&first),
            None,
            false,
            now,
        )
        .unwrap();
    match &bob.received()[..] {
        [
            ServerMessage::Subscribed {
                recovered,
                publications,
                position,
                ..
            },
        ] => {
            assert_eq!(*recovered, Some(true));
            let texts: Vec<_> = publications
                .iter()
                .map(|p| p.data["text"].clone())
                .collect();
            assert_eq!(texts, [json!("two"), json!("three")]);
            assert_eq!(position.as_ref().unwrap().offset, 3);
        }
        other => panic!("unexpected {other:?}"),
    }
    let stale = StreamPosition {
        epoch: "gone".into(),
        offset: 1,
    };
    state.unsubscribe(bob.connection_id, &lobby()).unwrap();
    state
        .subscribe(
            bob.connection_id,
            None,
            &lobby(),
            Some(&stale),
            None,
            false,
            now,
        )
        .unwrap();
    assert!(matches!(
        &bob.received()[..],
        [ServerMessage::Subscribed { recovered: Some(false), publications, .. }] if publications.is_empty()
    ));
    // With `rewind`, a lost gap comes back as fresh state, flagged as such.
    state.unsubscribe(bob.connection_id, &lobby()).unwrap();
    state
        .subscribe(
            bob.connection_id,
            None,
            &lobby(),
            Some(&stale),
            Some(2),
            false,
            now,
        )
        .unwrap();
    match &bob.received()[..] {
        [
            ServerMessage::Subscribed {
                recovered: Some(false),
                publications,
                ..
            },
        ] => {
            assert_eq!(texts_of(publications), ["two", "three"]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn texts_of(publications: &[rookery_common::Publication]) -> Vec<String> {
    publications
        .iter()
        .map(|p| p.data["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rewind_returns_recent_history_on_join() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 64);
    let mut bob = connect(&mut state, "bob", 64);
    for text in ["a", "b", "c"] {
        say(&mut state, &alice, text, now);
    }
    state
        .subscribe(bob.connection_id, None, &lobby(), None, Some(2), false, now)
        .unwrap();
    match &bob.received()[..] {
        [
            ServerMessage::Subscribed {
                publications,
                recovered: None,
                ..
            },
        ] => {
            assert_eq!(publications.len(), 2);
            assert_eq!(publications[1].data["text"], "c");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_slow_consumer_is_closed_and_others_keep_receiving() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 1024);
    let mut slow = connect(&mut state, "slow", 4);
    let mut fast = connect(&mut state, "fast", 1024);
    for client in [&alice, &slow, &fast] {
        state
            .subscribe(client.connection_id, None, &lobby(), None, None, false, now)
            .unwrap();
    }
    fast.received();
    for n in 0..100 {
        say(&mut state, &alice, &n.to_string(), now);
        // The fast client keeps up by reading as it goes.
        assert_eq!(texts(&fast.received()), [n.to_string()]);
    }
    assert_eq!(state.stats().n_slow_consumers, 1);
    let closing = slow.receiver.closing_now().expect("a close");
    assert_eq!(closing.code, CloseCode::SlowConsumer);
}

#[test]
fn clients_cannot_publish_in_server_only_namespaces() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 16);
    let notify = ChannelName::parse("notify:alice").unwrap();
    let error = state
        .publish(
            Publisher::Connection {
                id: alice.connection_id,
                granted: false,
            },
            &notify,
            json!(1),
            None,
            now,
            0,
        )
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::PermissionDenied);
    assert!(
        state
            .publish(Publisher::Server, &notify, json!(1), None, now, 0)
            .is_ok()
    );
    let unknown = ChannelName::parse("nope:x").unwrap();
    let error = state
        .subscribe(alice.connection_id, None, &unknown, None, None, false, now)
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UnknownNamespace);
}

#[test]
fn an_idempotency_key_publishes_once_within_the_window() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 16);
    let mut bob = connect(&mut state, "bob", 16);
    state
        .subscribe(bob.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    bob.received();
    let publish = |state: &mut HubState, at: Instant| {
        state
            .publish(
                Publisher::Connection {
                    id: alice.connection_id,
                    granted: false,
                },
                &lobby(),
                json!({"text": "once"}),
                Some("k1"),
                at,
                0,
            )
            .unwrap()
    };
    let first = publish(&mut state, now);
    let again = publish(&mut state, now + Duration::from_secs(10));
    assert_eq!(first, again, "the retry gets the first publish's position");
    assert_eq!(texts(&bob.received()), ["once"]);
    let after_window = publish(&mut state, now + Duration::from_secs(301));
    assert_ne!(after_window, first);
    assert_eq!(texts(&bob.received()), ["once"]);
}

#[test]
fn sweeping_forgets_expired_history_and_empty_channels() {
    let now = Instant::now();
    let mut state = state();
    let alice = connect(&mut state, "alice", 16);
    say(&mut state, &alice, "hello", now);
    assert_eq!(state.stats().n_channels, 1);
    state.sweep(now + Duration::from_secs(24 * 3600 + 1));
    assert_eq!(state.stats().n_channels, 0);
}

#[derive(Debug, Clone)]
enum Op {
    Connect(u8),
    Disconnect(u8),
    Subscribe(u8, u8),
    Unsubscribe(u8, u8),
    Publish(u8, u8),
    Sweep(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8).prop_map(Op::Connect),
        (0..8u8).prop_map(Op::Disconnect),
        (0..8u8, 0..3u8).prop_map(|(c, ch)| Op::Subscribe(c, ch)),
        (0..8u8, 0..3u8).prop_map(|(c, ch)| Op::Unsubscribe(c, ch)),
        (0..8u8, 0..3u8).prop_map(|(c, ch)| Op::Publish(c, ch)),
        (0..2000u16).prop_map(Op::Sweep),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let start = Instant::now();
        let mut now = start;
        let mut state = state();
        let mut clients: Vec<Client> = Vec::new();
        let channels = ["chat:a", "chat:b", "notify:c"].map(|c| ChannelName::parse(c).unwrap());
        let mut last_offsets: std::collections::HashMap<(ConnectionId, ChannelName), u64> = Default::default();
        for op in ops {
            match op {
                Op::Connect(user_index) => clients.push(connect(&mut state, &format!("u{user_index}"), 1024)),
                Op::Disconnect(i) => {
                    if let Some(client) = clients.get(i as usize) {
                        state.disconnect(client.connection_id);
                    }
                }
                Op::Subscribe(i, ch) => {
                    if let Some(client) = clients.get(i as usize) {
                        let _ = state.subscribe(client.connection_id, None, &channels[ch as usize], None, None, false, now);
                    }
                }
                Op::Unsubscribe(i, ch) => {
                    if let Some(client) = clients.get(i as usize) {
                        let _ = state.unsubscribe(client.connection_id, &channels[ch as usize]);
                    }
                }
                Op::Publish(i, ch) => {
                    if let Some(client) = clients.get(i as usize) {
                        let _ = state.publish(Publisher::Connection { id: client.connection_id, granted: false }, &channels[ch as usize], json!({"text": "x"}), None, now, 0);
                    }
                }
                Op::Sweep(seconds) => {
                    now += Duration::from_secs(u64::from(seconds) * 60);
                    state.sweep(now);
                }
            }
            state.check_invariants();
            // Every subscriber sees offsets strictly increase within an epoch.
            for client in &mut clients {
                for message in client.received() {
                    if let ServerMessage::Publication { channel, publication } = message
                        && let Some(position) = publication.position
                    {
                        let last = last_offsets.entry((client.connection_id, channel)).or_insert(0);
                        prop_assert!(position.offset > *last || position.offset == 1);
                        *last = position.offset;
                    }
                }
            }
        }
        for client in &clients {
            state.disconnect(client.connection_id);
        }
        state.check_invariants();
        prop_assert_eq!(state.stats().n_subscriptions, 0);
    }
}

#[test]
fn private_namespaces_need_a_grant_and_personal_channels_their_owner() {
    let now = Instant::now();
    let mut namespaces = Namespaces::default();
    namespaces.extend(std::collections::HashMap::from([(
        "team".to_owned(),
        NamespaceConfig {
            private: true,
            ..NamespaceConfig::default()
        },
    )]));
    let mut state = HubState::new(namespaces, HubLimits::default());
    let alice = connect(&mut state, "alice", 16);
    let team = ChannelName::parse("team:red").unwrap();
    let refused = state
        .subscribe(alice.connection_id, None, &team, None, None, false, now)
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PermissionDenied);
    let refused = state
        .publish(
            Publisher::Connection {
                id: alice.connection_id,
                granted: false,
            },
            &team,
            json!(1),
            None,
            now,
            0,
        )
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PermissionDenied);
    state
        .subscribe(alice.connection_id, None, &team, None, None, true, now)
        .unwrap();

    let own = ChannelName::parse("notify:alice").unwrap();
    let someone_elses = ChannelName::parse("notify:bob").unwrap();
    state
        .subscribe(alice.connection_id, None, &own, None, None, false, now)
        .unwrap();
    let refused = state
        .subscribe(
            alice.connection_id,
            None,
            &someone_elses,
            None,
            None,
            false,
            now,
        )
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PermissionDenied);
    state.check_invariants();
}

#[test]
fn presence_is_bounded_but_a_member_may_open_more_tabs() {
    let now = Instant::now();
    let limits = HubLimits {
        max_presence_members: 2,
        ..HubLimits::default()
    };
    let mut state = HubState::new(Namespaces::default(), limits);
    let ada = connect(&mut state, "ada", 16);
    let bob = connect(&mut state, "bob", 16);
    let ada_again = connect(&mut state, "ada", 16);
    let carol = connect(&mut state, "carol", 16);
    for client in [&ada, &bob, &ada_again] {
        state
            .subscribe(client.connection_id, None, &lobby(), None, None, false, now)
            .unwrap();
    }
    let refused = state
        .subscribe(carol.connection_id, None, &lobby(), None, None, false, now)
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::ChannelFull);
    state.check_invariants();
}

mod latest_value {
    use rookery_common::{GoneReason, Location};

    use super::*;

    fn map() -> ChannelName {
        ChannelName::parse("map:walk").unwrap()
    }

    fn at(lat: f64) -> Location {
        Location {
            lat,
            lon: 2.35,
            accuracy: 5.0,
            time: 1_800_000_000_000,
            speed: None,
            heading: None,
        }
    }

    fn locate(
        state: &mut HubState,
        client: &Client,
        lat: f64,
        now: Instant,
    ) -> Result<(), HubError> {
        state.locate(
            client.connection_id,
            &map(),
            &at(lat),
            false,
            false,
            now,
            1_800_000_000_000,
        )
    }

    #[test]
    fn a_new_subscriber_gets_every_position_then_changes_then_goes() {
        let start = Instant::now();
        let mut state = state();
        let ada = connect(&mut state, "ada", 16);
        let bob = connect(&mut state, "bob", 16);
        locate(&mut state, &ada, 48.0, start).unwrap();
        locate(&mut state, &bob, 49.0, start).unwrap();
        let mut viewer = connect(&mut state, "viewer", 16);
        state
            .subscribe(viewer.connection_id, None, &map(), None, None, false, start)
            .unwrap();
        match &viewer.received()[..] {
            [
                ServerMessage::Subscribed {
                    locations: Some(locations),
                    ..
                },
            ] => {
                let names: Vec<_> = locations.iter().map(|l| l.member.name.as_str()).collect();
                assert_eq!(names, ["ADA", "BOB"]);
            }
            other => panic!("{other:?}"),
        }
        locate(&mut state, &ada, 48.01, start + Duration::from_secs(2)).unwrap();
        assert!(
            matches!(&viewer.received()[..], [ServerMessage::Location { shared, .. }] if shared.location.lat == 48.01)
        );
        state.stop_sharing(bob.connection_id, &map()).unwrap();
        assert!(matches!(
            &viewer.received()[..],
            [ServerMessage::LocationGone { reason: GoneReason::Stopped, user, .. }] if user.0 == "bob"
        ));
        // Ada's connection drops: her marker stays until the TTL.
        state.disconnect(ada.connection_id);
        state.sweep(start + Duration::from_secs(60));
        assert!(viewer.received().is_empty());
        state.sweep(start + Duration::from_secs(2 + 120));
        assert!(matches!(
            &viewer.received()[..],
            [ServerMessage::LocationGone { reason: GoneReason::Expired, user, .. }] if user.0 == "ada"
        ));
        state.check_invariants();
    }

    #[test]
    fn streams_and_latest_values_refuse_each_others_commands() {
        let now = Instant::now();
        let mut state = state();
        let ada = connect(&mut state, "ada", 16);
        let error = state
            .publish(
                Publisher::Connection {
                    id: ada.connection_id,
                    granted: false,
                },
                &map(),
                json!(1),
                None,
                now,
                0,
            )
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::WrongKind);
        let error = state
            .locate(ada.connection_id, &lobby(), &at(48.0), false, false, now, 0)
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::WrongKind);
    }
}

// Cluster mode: the hub keeps copies of channels whose changes arrive from
// Redis, in Redis's order.

fn clustered() -> HubState {
    HubState::clustered(Namespaces::default(), HubLimits::default())
}

fn stamped(epoch: &str, offset: u64, text: &str) -> rookery_common::Publication {
    rookery_common::Publication {
        position: Some(StreamPosition {
            epoch: epoch.into(),
            offset,
        }),
        data: json!({ "text": text }),
        sender: None,
        time: unix_time_ms(),
    }
}

fn snapshot(epoch: &str, top: u64, texts: &[(u64, &str)]) -> ChannelSnapshot {
    ChannelSnapshot {
        epoch: epoch.into(),
        top,
        publications: texts
            .iter()
            .map(|(offset, text)| stamped(epoch, *offset, text))
            .collect(),
        leases: Vec::new(),
        locations: Vec::new(),
    }
}

fn arrive(state: &mut HubState, event: ClusterEvent, now: Instant) -> Result<(), Gap> {
    state.apply_event(&lobby(), event, now, unix_time_ms())
}

#[test]
fn a_followed_channel_recovers_from_the_clusters_stream_and_delivers_in_its_order() {
    let now = Instant::now();
    let mut state = clustered();
    let mut ada = connect(&mut state, "ada", 64);
    // Not followed yet: the cluster must sync it first.
    let refused = state.subscribe(ada.connection_id, None, &lobby(), None, None, false, now);
    assert_eq!(refused.unwrap_err().code, ErrorCode::Unavailable);

    let synced = state.sync_channel(
        &lobby(),
        snapshot("e", 3, &[(2, "two"), (3, "three")]),
        now,
        0,
    );
    assert_eq!(synced, Ok(Resync::Started));
    let since = StreamPosition {
        epoch: "e".into(),
        offset: 1,
    };
    state
        .subscribe(
            ada.connection_id,
            None,
            &lobby(),
            Some(&since),
            None,
            false,
            now,
        )
        .unwrap();
    let received = ada.received();
    let ServerMessage::Subscribed {
        recovered,
        publications,
        ..
    } = &received[0]
    else {
        panic!("{received:?}");
    };
    assert_eq!(*recovered, Some(true));
    assert_eq!(publications.len(), 2);

    // In order; a repeat is dropped; a gap is reported, not delivered.
    let publication = |offset, text| ClusterEvent::Publication(stamped("e", offset, text));
    arrive(&mut state, publication(4, "four"), now).unwrap();
    arrive(&mut state, publication(4, "four"), now).unwrap();
    let gap = arrive(&mut state, publication(7, "seven"), now).unwrap_err();
    assert_eq!(
        gap,
        Gap {
            epoch: "e".into(),
            from: 5,
            to: 7
        }
    );
    assert_eq!(texts(&ada.received()), ["four"]);
    state
        .fill_gap(
            &lobby(),
            vec![
                stamped("e", 5, "five"),
                stamped("e", 6, "six"),
                stamped("e", 7, "seven"),
            ],
            now,
            unix_time_ms(),
        )
        .unwrap();
    assert_eq!(texts(&ada.received()), ["five", "six", "seven"]);
    state.check_invariants();
}

#[test]
fn after_an_outage_a_copy_carries_on_or_its_subscribers_are_told_to_recover() {
    let now = Instant::now();
    let mut state = clustered();
    let mut ada = connect(&mut state, "ada", 64);
    state
        .sync_channel(
            &lobby(),
            snapshot("e", 2, &[(1, "one"), (2, "two")]),
            now,
            0,
        )
        .unwrap();
    state
        .subscribe(ada.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    ada.received();

    // Redis kept the stream: what the node missed is delivered, in order.
    let kept = snapshot("e", 4, &[(2, "two"), (3, "three"), (4, "four")]);
    assert_eq!(
        state.sync_channel(&lobby(), kept, now, 0),
        Ok(Resync::Continued)
    );
    assert_eq!(texts(&ada.received()), ["three", "four"]);

    // Redis lost it (restarted empty): the subscriber must recover.
    assert_eq!(
        state.sync_channel(&lobby(), snapshot("", 0, &[]), now, 0),
        Ok(Resync::Reset)
    );
    let closing = ada.receiver.closing_now().expect("a close");
    assert_eq!(closing.code, CloseCode::StreamReset);
    state.check_invariants();
}

#[test]
fn cluster_presence_counts_leases_one_member_per_user_across_nodes() {
    let now = Instant::now();
    let mut state = clustered();
    let mut ada = connect(&mut state, "ada", 64);
    let mut bob = connect(&mut state, "bob", 64);
    let mut ready = snapshot("", 0, &[]);
    // Cleo holds a lease on another node.
    ready.leases = vec![("other.1".into(), user("cleo"))];
    state.sync_channel(&lobby(), ready, now, 0).unwrap();
    state
        .subscribe_with_lease(
            ada.connection_id,
            None,
            &lobby(),
            None,
            None,
            false,
            Some("here.1".into()),
            now,
        )
        .unwrap();
    let received = ada.received();
    let ServerMessage::Subscribed { members, .. } = &received[0] else {
        panic!("{received:?}");
    };
    let names: Vec<&str> = members.iter().flatten().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ADA", "CLEO"]);
    state
        .subscribe_with_lease(
            bob.connection_id,
            None,
            &lobby(),
            None,
            None,
            false,
            Some("here.2".into()),
            now,
        )
        .unwrap();
    bob.received();
    assert!(
        matches!(&ada.received()[..], [ServerMessage::Join { member, .. }] if member.name == "BOB")
    );

    // Ada's own lease coming back from Redis changes nothing; Cleo on a
    // second node is still one member; her last lease going is her leave.
    let joined = |lease: &str, who: &str| ClusterEvent::LeaseJoined {
        lease: lease.into(),
        member: user(who),
    };
    arrive(&mut state, joined("here.1", "ada"), now).unwrap();
    arrive(&mut state, joined("third.9", "cleo"), now).unwrap();
    assert_eq!(ada.received(), []);
    let left = |lease: &str| ClusterEvent::LeaseLeft {
        lease: lease.into(),
    };
    arrive(&mut state, left("other.1"), now).unwrap();
    assert_eq!(ada.received(), []);
    arrive(&mut state, left("third.9"), now).unwrap();
    assert!(
        matches!(&ada.received()[..], [ServerMessage::Leave { member, .. }] if member.name == "CLEO")
    );
    state.check_invariants();

    // Bob disconnecting gives his lease back for the cluster to end.
    state.disconnect(bob.connection_id);
    assert_eq!(
        state.take_released_leases(),
        [(lobby(), "here.2".to_owned())]
    );
    assert!(
        matches!(&ada.received()[..], [ServerMessage::Leave { member, .. }] if member.name == "BOB")
    );
    assert_eq!(state.local_leases().len(), 1);
    state.check_invariants();
}

#[test]
fn a_channel_nobody_here_uses_is_let_go_after_the_linger() {
    let now = Instant::now();
    let linger = std::time::Duration::from_secs(30);
    let mut state = clustered();
    let ada = connect(&mut state, "ada", 64);
    state
        .sync_channel(&lobby(), snapshot("e", 0, &[]), now, 0)
        .unwrap();
    state
        .subscribe(ada.connection_id, None, &lobby(), None, None, false, now)
        .unwrap();
    assert_eq!(
        state.unpin_idle(now + linger * 2, linger),
        Vec::<ChannelName>::new()
    );
    state.unsubscribe(ada.connection_id, &lobby()).unwrap();
    let later = Instant::now();
    assert_eq!(state.unpin_idle(later, linger), Vec::<ChannelName>::new());
    assert_eq!(state.unpin_idle(later + linger, linger), [lobby()]);
    assert!(!state.is_synced(&lobby()));
    // Messages still in flight for it are ignored.
    arrive(
        &mut state,
        ClusterEvent::Publication(stamped("e", 9, "late")),
        now,
    )
    .unwrap();
    state.check_invariants();
}

#[test]
fn a_copy_behind_a_clients_position_says_what_it_lacks() {
    let now = Instant::now();
    let mut state = clustered();
    state
        .sync_channel(
            &lobby(),
            snapshot("e", 2, &[(1, "one"), (2, "two")]),
            now,
            0,
        )
        .unwrap();
    let ahead = StreamPosition {
        epoch: "e".into(),
        offset: 5,
    };
    assert!(state.is_behind(&lobby(), &ahead));
    assert_eq!(
        state.gap_to(&lobby(), 5),
        Some(Gap {
            epoch: "e".into(),
            from: 3,
            to: 5
        })
    );
    let elsewhere = StreamPosition {
        epoch: "f".into(),
        offset: 5,
    };
    assert!(!state.is_behind(&lobby(), &elsewhere));
    assert_eq!(state.gap_to(&lobby(), 2), None);
}

#[test]
fn without_history_an_outage_always_resets_the_channels_subscribers() {
    let now = Instant::now();
    let limits = HubLimits::default();
    let mut namespaces = Namespaces::default();
    namespaces.extend(std::collections::HashMap::from([(
        "live".to_owned(),
        NamespaceConfig {
            history_size: 0,
            ..NamespaceConfig::default()
        },
    )]));
    let mut state = HubState::clustered(namespaces, limits);
    let live = ChannelName::parse("live:feed").unwrap();
    let mut ada = connect(&mut state, "ada", 64);
    state
        .sync_channel(&live, ChannelSnapshot::default(), now, 0)
        .unwrap();
    state
        .subscribe(ada.connection_id, None, &live, None, None, false, now)
        .unwrap();
    ada.received();
    // Back after an outage: nothing shows what was missed meanwhile.
    assert_eq!(
        state.sync_channel(&live, ChannelSnapshot::default(), now, 0),
        Ok(Resync::Reset)
    );
    let closing = ada.receiver.closing_now().expect("a close");
    assert_eq!(closing.code, CloseCode::StreamReset);
}
