//! One latest-value channel's state: the current position of each sharer,
//! the filters a new position must pass, and expiry.
//!
//! Positions live only here, in memory: never on disk, never in history. An
//! approximate sharer's exact position is never stored at all.

use std::collections::HashMap;
use std::time::Duration;

use rookery_common::location::{approximate, distance_m, is_valid};
use rookery_common::{ErrorCode, Location, SharedLocation, UserId, UserInfo};
use tokio::time::Instant;

use super::HubError;
use super::namespace::NamespaceConfig;

#[derive(Debug, Default)]
pub struct LatestValues {
    entries: HashMap<UserId, Entry>,
}

#[derive(Debug)]
struct Entry {
    shared: SharedLocation,
    updated: Instant,
}

impl LatestValues {
    /// Checks a new position against the namespace's filters and keeps it;
    /// returns what subscribers receive.
    pub fn accept(
        &mut self,
        member: &UserInfo,
        location: &Location,
        wants_approximate: bool,
        namespace: &NamespaceConfig,
        now: Instant,
        now_ms: u64,
    ) -> Result<SharedLocation, HubError> {
        let shared = self.check(member, location, wants_approximate, namespace, now, now_ms)?;
        self.put(shared.clone(), now);
        Ok(shared)
    }

    /// Keeps a position already accepted (in a cluster, by whichever node
    /// its sharer is on).
    pub fn put(&mut self, shared: SharedLocation, now: Instant) {
        self.entries.insert(
            shared.member.user.clone(),
            Entry {
                shared,
                updated: now,
            },
        );
    }

    /// What `accept` checks, without keeping anything: the position
    /// subscribers would receive.
    pub fn check(
        &self,
        member: &UserInfo,
        location: &Location,
        wants_approximate: bool,
        namespace: &NamespaceConfig,
        now: Instant,
        now_ms: u64,
    ) -> Result<SharedLocation, HubError> {
        if !is_valid(location) {
            return Err(HubError::new(
                ErrorCode::InvalidLocation,
                "latitude must be -90..90, longitude -180..180, accuracy >= 0, all finite, and not (0, 0)",
            ));
        }
        if location.accuracy > namespace.max_accuracy_m {
            return Err(HubError::new(
                ErrorCode::TooInaccurate,
                format!(
                    "accuracy {:.0} m is over the maximum of {:.0} m",
                    location.accuracy, namespace.max_accuracy_m
                ),
            ));
        }
        let max_future_ms = namespace.max_future.as_millis() as u64;
        if location.time > now_ms.saturating_add(max_future_ms) {
            return Err(HubError::new(
                ErrorCode::FutureTimestamp,
                format!("the position's time is more than {max_future_ms} ms ahead of the server"),
            ));
        }
        let location = if wants_approximate {
            approximate(location)
        } else {
            *location
        };
        if let Some(previous) = self.entries.get(&member.user) {
            let since = now.saturating_duration_since(previous.updated);
            if since < namespace.min_interval {
                return Err(HubError::new(
                    ErrorCode::TooFrequent,
                    format!(
                        "at most one position every {} ms",
                        namespace.min_interval.as_millis()
                    ),
                ));
            }
            // Someone standing still must still refresh before the TTL.
            let refresh_due = since >= namespace.value_ttl / 3;
            let moved = distance_m(&previous.shared.location, &location);
            let same_precision = previous.shared.approximate == wants_approximate;
            if same_precision && !refresh_due && moved < namespace.min_distance_m {
                return Err(HubError::new(
                    ErrorCode::TooClose,
                    format!(
                        "moved {moved:.1} m, less than the minimum of {:.1} m",
                        namespace.min_distance_m
                    ),
                ));
            }
        }
        Ok(SharedLocation {
            member: member.clone(),
            location,
            approximate: wants_approximate,
        })
    }

    /// Forgets a sharer; true if they were sharing.
    pub fn stop(&mut self, user: &UserId) -> bool {
        self.entries.remove(user).is_some()
    }

    /// Removes and returns the sharers not updated within `ttl`.
    pub fn expire(&mut self, ttl: Duration, now: Instant) -> Vec<UserId> {
        let expired: Vec<UserId> = self
            .entries
            .iter()
            .filter(|(_, entry)| now.saturating_duration_since(entry.updated) >= ttl)
            .map(|(user, _)| user.clone())
            .collect();
        for user in &expired {
            self.entries.remove(user);
        }
        expired
    }

    /// Every current position, by member name.
    pub fn snapshot(&self) -> Vec<SharedLocation> {
        let mut all: Vec<SharedLocation> =
            self.entries.values().map(|e| e.shared.clone()).collect();
        all.sort_by(|a, b| {
            a.member
                .name
                .cmp(&b.member.name)
                .then_with(|| a.member.user.cmp(&b.member.user))
        });
        all
    }

    /// Sharers, in no order.
    pub fn users(&self) -> impl Iterator<Item = &UserId> {
        self.entries.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn ada() -> UserInfo {
        UserInfo::new(UserId("ada".into()), "Ada".into())
    }

    fn at(lat: f64, lon: f64) -> Location {
        Location {
            lat,
            lon,
            accuracy: 8.0,
            time: NOW_MS,
            speed: None,
            heading: None,
        }
    }

    fn check(result: &Result<SharedLocation, HubError>, expect: Option<ErrorCode>) {
        assert_eq!(result.as_ref().err().map(|e| e.code), expect, "{result:?}");
    }

    #[test]
    fn each_filter_rejects_with_its_code() {
        let namespace = NamespaceConfig::default();
        let start = Instant::now();
        let mut values = LatestValues::default();
        let accept = |values: &mut LatestValues, location: Location, at: Instant| {
            values.accept(&ada(), &location, false, &namespace, at, NOW_MS)
        };
        check(
            &accept(&mut values, at(91.0, 0.0), start),
            Some(ErrorCode::InvalidLocation),
        );
        check(
            &accept(&mut values, at(0.0, 0.0), start),
            Some(ErrorCode::InvalidLocation),
        );
        check(
            &accept(
                &mut values,
                Location {
                    accuracy: 20_000.0,
                    ..at(48.0, 2.0)
                },
                start,
            ),
            Some(ErrorCode::TooInaccurate),
        );
        check(
            &accept(
                &mut values,
                Location {
                    time: NOW_MS + 120_000,
                    ..at(48.0, 2.0)
                },
                start,
            ),
            Some(ErrorCode::FutureTimestamp),
        );
        check(&accept(&mut values, at(48.0, 2.0), start), None);
        let soon = start + Duration::from_millis(500);
        check(
            &accept(&mut values, at(48.001, 2.0), soon),
            Some(ErrorCode::TooFrequent),
        );
        let later = start + Duration::from_secs(2);
        check(
            &accept(&mut values, at(48.000_001, 2.0), later),
            Some(ErrorCode::TooClose),
        );
        check(&accept(&mut values, at(48.001, 2.0), later), None);
        // Standing still is accepted once a third of the TTL has passed.
        let refresh = later + namespace.value_ttl / 3;
        check(&accept(&mut values, at(48.001, 2.0), refresh), None);
    }

    #[test]
    fn approximate_sharing_never_keeps_the_exact_position() {
        let namespace = NamespaceConfig::default();
        let mut values = LatestValues::default();
        let exact = at(48.856_613, 2.352_222);
        let shared = values
            .accept(&ada(), &exact, true, &namespace, Instant::now(), NOW_MS)
            .unwrap();
        assert!(shared.approximate);
        assert_ne!(
            (shared.location.lat, shared.location.lon),
            (exact.lat, exact.lon)
        );
        let snapshot = values.snapshot();
        assert_eq!(snapshot[0].location, shared.location);
    }

    #[test]
    fn sharers_expire_after_the_ttl() {
        let namespace = NamespaceConfig::default();
        let start = Instant::now();
        let mut values = LatestValues::default();
        values
            .accept(&ada(), &at(48.0, 2.0), false, &namespace, start, NOW_MS)
            .unwrap();
        assert!(
            values
                .expire(namespace.value_ttl, start + Duration::from_secs(119))
                .is_empty()
        );
        let expired = values.expire(namespace.value_ttl, start + Duration::from_secs(120));
        assert_eq!(expired, [UserId("ada".into())]);
        assert!(values.is_empty());
    }
}
