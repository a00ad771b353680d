//! Publishing in the background, in order: the notes' changes
//! (fire-and-forget messages, pipelined) and the server's own publications
//! (the notes list's events).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rookery_common::backoff::Backoff;
use rookery_common::{ChannelName, Publication};
use tokio::sync::mpsc;

use super::Cluster;
use crate::hub::NamespaceConfig;

/// Most messages per pipeline.
const BATCH: usize = 256;
/// Attempts at a batch before it is given up (other nodes then catch up
/// from the store when their own connection comes back).
const ATTEMPTS: u32 = 6;

pub async fn run(cluster: Cluster, mut messages: mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let backoff = Backoff {
        initial_ms: 100,
        max_ms: 2_000,
    };
    while let Some(first) = messages.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            let Ok(message) = messages.try_recv() else {
                break;
            };
            batch.push(message);
        }
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        for attempt in 0..ATTEMPTS {
            let sent: redis::RedisResult<()> = pipe.query_async(&mut cluster.commands()).await;
            match sent {
                Ok(()) => break,
                Err(error) if attempt + 1 == ATTEMPTS => {
                    tracing::warn!(%error, n = batch.len(), "redis: note changes not published");
                    cluster.shared.commands_ok.store(false, Ordering::SeqCst);
                }
                Err(_) => {
                    let delay = backoff.delay_ms(attempt, rand::random::<f64>());
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
            }
        }
    }
}

/// A server publication to make in the background.
pub struct Announcement {
    pub channel: ChannelName,
    pub publication: Publication,
    pub namespace: NamespaceConfig,
    pub idempotency_window: Duration,
}

/// Publishes announcements one after another, so they keep their order.
pub async fn announce(cluster: Cluster, mut announcements: mpsc::UnboundedReceiver<Announcement>) {
    while let Some(announcement) = announcements.recv().await {
        let published = cluster
            .publish(
                &announcement.channel,
                &announcement.publication,
                None,
                &announcement.namespace,
                announcement.idempotency_window,
            )
            .await;
        if let Err(error) = published {
            tracing::warn!(channel = %announcement.channel, %error, "not published");
        }
    }
}
