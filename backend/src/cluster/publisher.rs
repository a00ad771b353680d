//! Fire-and-forget publishing (the notes' changes): one task, so a node's
//! messages keep their order, and whatever queued up meanwhile goes out in
//! one pipeline.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::Cluster;

/// Most messages per pipeline.
const BATCH: usize = 256;

pub async fn run(cluster: Cluster, mut messages: mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    while let Some(first) = messages.recv().await {
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH").arg(first.0).arg(first.1).ignore();
        let mut n = 1;
        while n < BATCH {
            let Ok((channel, payload)) = messages.try_recv() else {
                break;
            };
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
            n += 1;
        }
        let sent: redis::RedisResult<()> = pipe.query_async(&mut cluster.commands()).await;
        if let Err(error) = sent {
            // Lost for the other nodes' editors until those nodes reload the
            // note from the store (after their own Redis connection drops).
            tracing::warn!(%error, n, "redis: note changes not published");
            cluster.shared.commands_ok.store(false, Ordering::SeqCst);
        }
    }
}
