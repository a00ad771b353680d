//! Tokens: who may connect, which private channels they may use, and what
//! happens when a token expires. Test keys live in `tests/fixtures/` (made
//! for these tests only).

use std::time::Duration;

use rookery::auth::{ConnectionClaims, Minter, SubscriptionClaims, Verifier, unix_now};
use rookery_common::{ChannelName, ClientMessage, ErrorCode, ServerMessage, Token};

use crate::support::{TestClient, TestServer, minter};

fn claims(sub: &str, exp: Option<u64>, channels: &[&str]) -> ConnectionClaims {
    ConnectionClaims {
        sub: sub.into(),
        name: Some(sub.to_uppercase()),
        exp,
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        channel: None,
    }
}

async fn team_server() -> TestServer {
    TestServer::start_with(|config| {
        let mut toml_namespaces = std::collections::HashMap::new();
        toml_namespaces.insert(
            "team".to_owned(),
            toml::from_str::<rookery::hub::NamespaceConfig>("private = true\npresence = true")
                .unwrap(),
        );
        config.namespaces.extend(toml_namespaces);
    })
    .await
}

#[tokio::test]
async fn a_token_names_the_user_and_grants_private_channels() {
    let server = team_server().await;
    let token = minter().mint(&claims("alice", Some(unix_now() + 600), &["team:*"]));
    let mut alice = TestClient::open(&server.ws_url()).await;
    match alice.connect_with_token(&token).await {
        ServerMessage::Connected {
            user, expires_at, ..
        } => {
            assert_eq!(user.user.0, "alice");
            assert_eq!(user.name, "ALICE");
            assert!(expires_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    alice.subscribe("team:red").await;

    // Anonymous Bob is refused the private channel, with its code.
    let mut bob = server.client("Bob").await;
    let channel = ChannelName::parse("team:red").unwrap();
    let reply = bob
        .request(|id| ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: None,
            token: None,
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::PermissionDenied,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_subscription_token_grants_one_channel_to_one_user() {
    let server = team_server().await;
    let mut carol = TestClient::open(&server.ws_url()).await;
    carol
        .connect_with_token(&minter().mint(&claims("carol", None, &[])))
        .await;
    let grant = minter().mint(&SubscriptionClaims {
        sub: "carol".into(),
        channel: "team:blue".into(),
        exp: None,
    });
    let subscribe = |channel: &str, token: &str| {
        let channel = ChannelName::parse(channel).unwrap();
        let token = Some(Token(token.to_owned()));
        move |id| ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: None,
            token,
        }
    };
    let reply = carol.request(subscribe("team:blue", &grant)).await;
    assert!(
        matches!(reply, ServerMessage::Subscribed { .. }),
        "{reply:?}"
    );
    let reply = carol.request(subscribe("team:green", &grant)).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::InvalidToken,
                ..
            }
        ),
        "{reply:?}"
    );

    // Someone else cannot use Carol's grant.
    let mut dave = TestClient::open(&server.ws_url()).await;
    dave.connect_with_token(&minter().mint(&claims("dave", None, &[])))
        .await;
    let reply = dave.request(subscribe("team:blue", &grant)).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::InvalidToken,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn forged_expired_and_none_tokens_are_closed_with_their_codes() {
    let server = team_server().await;
    let forged = Minter::hs256(b"not-the-server-secret")
        .unwrap()
        .mint(&claims("mallory", None, &["*"]));
    let mut client = TestClient::open(&server.ws_url()).await;
    client.send(&connect_with(&forged)).await;
    assert_eq!(client.closed().await.code, 4001);

    let expired = minter().mint(&claims("alice", Some(unix_now() - 5), &[]));
    let mut client = TestClient::open(&server.ws_url()).await;
    client.send(&connect_with(&expired)).await;
    assert_eq!(client.closed().await.code, 4002);

    // alg: none, built by hand: {"alg":"none"} . {"sub":"mallory"} . (empty)
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtYWxsb3J5In0.";
    let mut client = TestClient::open(&server.ws_url()).await;
    client.send(&connect_with(none)).await;
    assert_eq!(client.closed().await.code, 4001);
}

fn connect_with(token: &str) -> ClientMessage {
    ClientMessage::Connect {
        id: Some(rookery_common::CommandId(1)),
        token: Some(Token(token.into())),
        name: None,
        anonymous_id: None,
    }
}

#[tokio::test]
async fn an_expiring_token_is_closed_with_4002_unless_refreshed() {
    let server = TestServer::start().await;
    // Erin refreshes in time and stays; Frank does not and is closed.
    let soon = unix_now() + 2;
    let mut erin = TestClient::open(&server.ws_url()).await;
    erin.connect_with_token(&minter().mint(&claims("erin", Some(soon), &[])))
        .await;
    let mut frank = TestClient::open(&server.ws_url()).await;
    frank
        .connect_with_token(&minter().mint(&claims("frank", Some(soon), &[])))
        .await;

    let fresh = minter().mint(&claims("erin", Some(unix_now() + 600), &[]));
    let reply = erin
        .request(|id| ClientMessage::Refresh {
            id,
            token: Token(fresh),
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Refreshed {
                expires_at: Some(_),
                ..
            }
        ),
        "{reply:?}"
    );

    // A refresh for another user is refused and changes nothing.
    let other = minter().mint(&claims("mallory", None, &[]));
    let reply = erin
        .request(|id| ClientMessage::Refresh {
            id,
            token: Token(other),
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::InvalidToken,
                ..
            }
        ),
        "{reply:?}"
    );

    match frank.recv().await {
        ServerMessage::Disconnect {
            code, reconnect, ..
        } => {
            assert_eq!(code.number(), 4002);
            assert!(!reconnect);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(frank.closed().await.code, 4002);
    // Erin is still there after Frank's deadline.
    erin.wait = Duration::from_secs(5);
    let reply = erin.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(reply, ServerMessage::Pong { .. }));
}

#[tokio::test]
async fn tokens_are_required_when_anonymous_access_is_off() {
    let server = TestServer::start_with(|config| config.allow_anonymous = false).await;
    let mut anonymous = TestClient::open(&server.ws_url()).await;
    anonymous
        .send(&ClientMessage::Connect {
            id: None,
            token: None,
            name: Some("Anon".into()),
            anonymous_id: None,
        })
        .await;
    assert_eq!(anonymous.closed().await.code, 4001);
    let mut alice = TestClient::open(&server.ws_url()).await;
    let reply = alice
        .connect_with_token(&minter().mint(&claims("alice", None, &[])))
        .await;
    assert!(matches!(reply, ServerMessage::Connected { .. }));
}

#[tokio::test]
async fn rs256_and_es256_public_keys_verify_their_tokens() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (private, public) in [
        ("rsa-private.pem", "rsa-public.pem"),
        ("ec-private.pem", "ec-public.pem"),
    ] {
        let minter =
            Minter::from_private_key_pem(&std::fs::read(fixtures.join(private)).unwrap()).unwrap();
        let verifier = Verifier::load_public_key(&fixtures.join(public)).unwrap();
        let server =
            TestServer::start_with(|config| config.verifier = Some(verifier.clone())).await;
        let mut client = TestClient::open(&server.ws_url()).await;
        let reply = client
            .connect_with_token(&minter.mint(&claims("kim", None, &[])))
            .await;
        assert!(
            matches!(reply, ServerMessage::Connected { .. }),
            "{public}: {reply:?}"
        );
        // A token signed with the shared secret does not pass for the key.
        let mut forger = TestClient::open(&server.ws_url()).await;
        forger
            .send(&connect_with(&crate::support::minter().mint(&claims(
                "kim",
                None,
                &[],
            ))))
            .await;
        assert_eq!(forger.closed().await.code, 4001, "{public}");
    }
}
