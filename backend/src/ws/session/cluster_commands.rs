//! The commands that go through Redis when the node is a cluster member:
//! subscribe (follow the channel, take a presence lease), publish (stamped
//! and fanned out by Redis), and the presence and history queries (answered
//! from the followed channel's copy).

use rookery_common::{ChannelName, ClientMessage, CommandId, ErrorCode, ServerMessage};
use tokio::time::Instant;

use super::Session;
use crate::cluster::Cluster;
use crate::hub::{ChannelKind, HubError, Publisher, unix_time_ms};

/// A presence lease added to Redis that no subscription holds yet.
struct LeaseGuard<'a> {
    cluster: &'a Cluster,
    channel: ChannelName,
    lease: Option<String>,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.cluster.release_lease(self.channel.clone(), lease);
        }
    }
}

impl Session {
    /// The cluster, when this command needs it.
    pub(super) fn cluster_for(&self, command: &ClientMessage) -> Option<Cluster> {
        let needs_cluster = matches!(
            command,
            ClientMessage::Subscribe { .. }
                | ClientMessage::Publish { .. }
                | ClientMessage::Presence { .. }
                | ClientMessage::History { .. }
                | ClientMessage::Locate { .. }
                | ClientMessage::StopSharing { .. }
        );
        if needs_cluster && self.connection_id.is_some() {
            self.state.cluster.clone()
        } else {
            None
        }
    }

    pub(super) async fn cluster_command(
        &mut self,
        cluster: &Cluster,
        command: ClientMessage,
    ) -> Result<(), HubError> {
        let Some(connection_id) = self.connection_id else {
            return Ok(());
        };
        match command {
            ClientMessage::Subscribe {
                id,
                channel,
                since,
                rewind,
                token,
            } => {
                let granted = self.grant(&channel, token.as_ref())?;
                let namespace = self
                    .hub()
                    .with(|hub| hub.check_subscribe(connection_id, &channel, granted))?;
                cluster.follow(self.hub(), &channel).await?;
                if let Some(since) = &since
                    && self.hub().with(|hub| hub.is_behind(&channel, since))
                {
                    // The client comes from a node that was ahead of this
                    // one: recover only once this copy has what it had.
                    cluster.catch_up(&channel, since.offset).await;
                }
                // Released unless a subscription takes it: whether adding it
                // fails, times out after Redis ran it, or this is dropped.
                let mut lease = None;
                if namespace.presence {
                    let guard = LeaseGuard {
                        cluster,
                        channel: channel.clone(),
                        lease: Some(cluster.new_lease()),
                    };
                    let member = self.hub().with(|hub| hub.user(connection_id))?;
                    let added = guard.lease.as_deref().expect("set above");
                    cluster.add_lease(&channel, added, &member).await?;
                    lease = Some(guard);
                }
                self.hub().with(|hub| {
                    let taken = lease.as_ref().and_then(|guard| guard.lease.clone());
                    hub.subscribe_with_lease(
                        connection_id,
                        id,
                        &channel,
                        since.as_ref(),
                        rewind,
                        granted,
                        taken,
                        Instant::now(),
                    )?;
                    // The connection holds it now.
                    if let Some(guard) = &mut lease {
                        guard.lease = None;
                    }
                    Ok(())
                })
            }
            ClientMessage::Publish {
                id,
                channel,
                data,
                idempotency_key,
            } => {
                self.check_publish(idempotency_key.as_deref(), Instant::now())?;
                let granted = self.capabilities.allows(&channel);
                let publisher = Publisher::Connection {
                    id: connection_id,
                    granted,
                };
                self.publish_in_cluster(cluster, id, channel, publisher, data, idempotency_key)
                    .await
            }
            ClientMessage::Presence { id, channel } => {
                self.check_read(connection_id, &channel)?;
                cluster.follow(self.hub(), &channel).await?;
                self.answer_presence(connection_id, id, channel)
            }
            ClientMessage::History {
                id,
                channel,
                since,
                limit,
            } => {
                self.check_read(connection_id, &channel)?;
                cluster.follow(self.hub(), &channel).await?;
                self.answer_history(connection_id, id, channel, since.as_ref(), limit)
            }
            ClientMessage::Locate {
                id,
                channel,
                location,
                approximate,
            } => {
                let granted = self.capabilities.allows(&channel);
                // The filters compare with the sharer's last position, in
                // the followed copy.
                self.check_read(connection_id, &channel)?;
                cluster.follow(self.hub(), &channel).await?;
                let (shared, namespace) = self.hub().with(|hub| {
                    hub.check_locate(
                        connection_id,
                        &channel,
                        &location,
                        approximate,
                        granted,
                        Instant::now(),
                        unix_time_ms(),
                    )
                })?;
                cluster
                    .locate(&channel, &shared, namespace.value_ttl)
                    .await?;
                self.acknowledge(&ServerMessage::Located { id, channel });
                Ok(())
            }
            ClientMessage::StopSharing { id, channel } => {
                let user = self.hub().with(|hub| {
                    if hub.kind(&channel)? != ChannelKind::LatestValue {
                        return Err(HubError::new(
                            ErrorCode::WrongKind,
                            format!("{channel}: stop_sharing needs a latest-value channel"),
                        ));
                    }
                    hub.user(connection_id)
                })?;
                cluster.stop_sharing(&channel, &user.user).await?;
                self.acknowledge(&ServerMessage::Stopped { id, channel });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_read(
        &self,
        connection_id: rookery_common::ConnectionId,
        channel: &ChannelName,
    ) -> Result<(), HubError> {
        let granted = self.capabilities.allows(channel);
        self.hub()
            .with(|hub| hub.check_read(connection_id, channel, granted))
    }

    async fn publish_in_cluster(
        &mut self,
        cluster: &Cluster,
        id: Option<CommandId>,
        channel: ChannelName,
        publisher: Publisher,
        data: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> Result<(), HubError> {
        let (publication, namespace) = self
            .hub()
            .with(|hub| hub.prepare_publication(publisher, &channel, data, unix_time_ms()))?;
        let position = cluster
            .publish(
                &channel,
                &publication,
                idempotency_key.as_deref(),
                &namespace,
                self.state.config.limits.hub.idempotency_window,
            )
            .await?;
        self.acknowledge(&ServerMessage::Published {
            id,
            channel,
            position,
        });
        Ok(())
    }
}
