//! Who is sharing in a room and where, updated by channel events.

use std::collections::BTreeMap;

use rookery_common::{SharedLocation, UserId};

use crate::socket::ChannelEvent;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapState {
    pub sharers: BTreeMap<UserId, SharedLocation>,
    /// The subscription is in place: what is shown is current.
    pub joined: bool,
    pub refused: Option<String>,
}

impl MapState {
    pub fn apply(&mut self, event: ChannelEvent) {
        match event {
            ChannelEvent::Subscribed { locations, .. } => {
                // The snapshot is the whole truth: anything not in it (a
                // sharer who left while we were away) goes. No ghosts.
                self.sharers = locations
                    .unwrap_or_default()
                    .into_iter()
                    .map(|shared| (shared.member.user.clone(), shared))
                    .collect();
                self.joined = true;
                self.refused = None;
            }
            ChannelEvent::Location(shared) => {
                self.sharers.insert(shared.member.user.clone(), shared);
            }
            ChannelEvent::LocationGone { user, .. } => {
                self.sharers.remove(&user);
            }
            ChannelEvent::Interrupted => self.joined = false,
            ChannelEvent::Refused { message, .. } => {
                self.joined = false;
                self.refused = Some(message);
            }
            ChannelEvent::Publication(_) | ChannelEvent::Join(_) | ChannelEvent::Leave(_) => {}
        }
    }

    /// Sharers by name.
    pub fn list(&self) -> Vec<SharedLocation> {
        let mut list: Vec<SharedLocation> = self.sharers.values().cloned().collect();
        list.sort_by(|a, b| {
            a.member
                .name
                .cmp(&b.member.name)
                .then_with(|| a.member.user.cmp(&b.member.user))
        });
        list
    }
}

/// How stale a position looks, from 0 (fresh) to 1 (about to expire): it
/// starts fading after a quarter of the TTL.
pub fn staleness(age_ms: f64, ttl_ms: f64) -> f64 {
    let fresh_for = ttl_ms / 4.0;
    ((age_ms - fresh_for) / (ttl_ms - fresh_for)).clamp(0.0, 1.0)
}

/// "just now", "12 s ago", "3 min ago".
pub fn age_label(age_ms: f64) -> String {
    let seconds = (age_ms / 1000.0).max(0.0) as u64;
    match seconds {
        0..=1 => "just now".into(),
        2..=59 => format!("{seconds} s ago"),
        _ => format!("{} min ago", seconds / 60),
    }
}

#[cfg(test)]
mod tests {
    use rookery_common::{GoneReason, Location, UserInfo};

    use super::*;

    fn shared(user: &str, lat: f64) -> SharedLocation {
        SharedLocation {
            member: UserInfo::new(UserId(user.into()), user.to_uppercase()),
            location: Location {
                lat,
                lon: 2.0,
                accuracy: 5.0,
                time: 0,
                speed: None,
                heading: None,
            },
            approximate: false,
        }
    }

    #[test]
    fn the_snapshot_after_a_reconnect_replaces_everything() {
        let mut state = MapState::default();
        state.apply(ChannelEvent::Location(shared("ada", 1.0)));
        state.apply(ChannelEvent::Location(shared("ghost", 2.0)));
        state.apply(ChannelEvent::Location(shared("ada", 1.5)));
        assert_eq!(state.sharers.len(), 2, "one marker per sharer");
        state.apply(ChannelEvent::Interrupted);
        state.apply(ChannelEvent::Subscribed {
            recovered: None,
            publications: vec![],
            members: None,
            locations: Some(vec![shared("ada", 1.6)]),
        });
        let names: Vec<_> = state.list().into_iter().map(|s| s.member.name).collect();
        assert_eq!(names, ["ADA"]);
        assert!(state.joined);
        state.apply(ChannelEvent::LocationGone {
            user: UserId("ada".into()),
            reason: GoneReason::Stopped,
        });
        assert!(state.sharers.is_empty());
    }

    #[test]
    fn staleness_and_age() {
        assert_eq!(staleness(10_000.0, 120_000.0), 0.0);
        assert_eq!(staleness(120_000.0, 120_000.0), 1.0);
        assert!((staleness(75_000.0, 120_000.0) - 0.5).abs() < 1e-9);
        assert_eq!(age_label(500.0), "just now");
        assert_eq!(age_label(12_400.0), "12 s ago");
        assert_eq!(age_label(185_000.0), "3 min ago");
    }
}
