//! Presence leases: this node's are refreshed every third of their TTL
//! (and put back if Redis lost them), released ones are ended, and expired
//! ones — any node's, normally a dead one's — are ended and announced.
//!
//! Refreshes and releases run in this one task, in order, so a refresh can
//! never bring back a lease released before it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rookery_common::ChannelName;
use tokio::sync::{mpsc, oneshot};

use super::{Cluster, scripts, wire};
use crate::hub::Hub;

pub enum Request {
    Release(Vec<(ChannelName, String)>),
    /// Answered once every earlier request is done.
    Flush(oneshot::Sender<()>),
}

/// Leases per refresh call.
const TOUCH_BATCH: usize = 1_000;
/// Expired leases ended per purge call.
const PURGE_BATCH: usize = 1_000;

pub async fn run(cluster: Cluster, hub: Hub, mut requests: mpsc::UnboundedReceiver<Request>) {
    let ttl = cluster.shared.lease_ttl;
    let mut refresh = tokio::time::interval(ttl / 3);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Expired leases go within a second of their TTL.
    let mut purge = tokio::time::interval((ttl / 3).min(Duration::from_secs(1)));
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                None => return,
                Some(Request::Release(leases)) => release(&cluster, &leases).await,
                Some(Request::Flush(done)) => {
                    let _ = done.send(());
                }
            },
            _ = refresh.tick() => {
                let leases = hub.with(|hub| hub.local_leases());
                for batch in leases.chunks(TOUCH_BATCH) {
                    touch(&cluster, batch).await;
                }
            }
            _ = purge.tick() => purge_expired(&cluster).await,
        }
    }
}

async fn release(cluster: &Cluster, leases: &[(ChannelName, String)]) {
    let mut invocation = scripts::RELEASE_LEASES.key(wire::leases_key());
    invocation.arg(wire::PREFIX);
    for (channel, lease) in leases {
        invocation.arg(channel.as_str()).arg(lease);
    }
    let result: redis::RedisResult<i64> = invocation.invoke_async(&mut cluster.commands()).await;
    if let Err(error) = result {
        // They expire with their TTL instead.
        tracing::warn!(%error, n = leases.len(), "redis: leases not released");
        cluster.shared.commands_ok.store(false, Ordering::SeqCst);
    }
}

async fn touch(cluster: &Cluster, leases: &[(ChannelName, String, rookery_common::UserInfo)]) {
    let mut invocation = scripts::TOUCH_LEASES.key(wire::leases_key());
    invocation
        .arg(cluster.shared.lease_ttl.as_millis() as u64)
        .arg(wire::PREFIX);
    for (channel, lease, member) in leases {
        invocation
            .arg(channel.as_str())
            .arg(lease)
            .arg(serde_json::to_string(member).expect("members serialise"));
    }
    let result: redis::RedisResult<i64> = invocation.invoke_async(&mut cluster.commands()).await;
    match result {
        Ok(restored) => {
            cluster.shared.commands_ok.store(true, Ordering::SeqCst);
            if restored > 0 {
                tracing::info!(restored, "redis: presence leases put back");
            }
        }
        Err(error) => {
            tracing::warn!(%error, "redis: leases not refreshed");
            cluster.shared.commands_ok.store(false, Ordering::SeqCst);
        }
    }
}

async fn purge_expired(cluster: &Cluster) {
    let result: redis::RedisResult<i64> = scripts::PURGE_LEASES
        .key(wire::leases_key())
        .key(wire::position_expiries_key())
        .arg(wire::PREFIX)
        .arg(PURGE_BATCH)
        .invoke_async(&mut cluster.commands())
        .await;
    match result {
        Ok(n) => {
            cluster.shared.commands_ok.store(true, Ordering::SeqCst);
            if n > 0 {
                tracing::info!(n, "expired presence leases and positions ended");
            }
        }
        Err(error) => {
            tracing::debug!(%error, "redis: expired leases not purged");
            cluster.shared.commands_ok.store(false, Ordering::SeqCst);
        }
    }
}
