//! One channel's history: a bounded, expiring stream of publications with
//! positions, and the recovery question "what came after this position?".

use std::collections::VecDeque;
use std::time::Duration;

use rookery_common::{Publication, StreamPosition};
use tokio::time::Instant;

#[derive(Debug)]
pub struct History {
    epoch: String,
    /// Offset of the newest publication ever appended (0 before the first).
    top: u64,
    entries: VecDeque<Entry>,
    max_size: usize,
    ttl: Duration,
}

#[derive(Debug)]
struct Entry {
    publication: Publication,
    expires: Instant,
}

/// What [`History::apply`] did with a publication stamped elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Appended,
    /// Already kept (or older than what is kept): nothing to deliver.
    Duplicate,
    /// Publications from offset `from` on are missing before this one.
    Gap {
        from: u64,
    },
}

/// The answer to a recovery request.
#[derive(Debug, PartialEq)]
pub struct Recovery {
    pub publications: Vec<Publication>,
    /// True when `publications` is exactly everything after the position.
    pub recovered: bool,
}

impl History {
    pub fn new(epoch: String, max_size: usize, ttl: Duration) -> Self {
        Self {
            epoch,
            top: 0,
            entries: VecDeque::new(),
            max_size,
            ttl,
        }
    }

    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            epoch: self.epoch.clone(),
            offset: self.top,
        }
    }

    /// Stamps `publication` with the next position and keeps it.
    pub fn append(&mut self, mut publication: Publication, now: Instant) -> StreamPosition {
        self.expire(now);
        self.top += 1;
        let position = self.position();
        publication.position = Some(position.clone());
        self.entries.push_back(Entry {
            publication,
            expires: now + self.ttl,
        });
        while self.entries.len() > self.max_size {
            self.entries.pop_front();
        }
        position
    }

    /// A copy of a stream kept elsewhere (the cluster's Redis): `top` is
    /// the newest offset, `publications` the newest kept ones, oldest first,
    /// each with its position. Their age comes from their publication time.
    pub fn restore(
        epoch: String,
        top: u64,
        publications: Vec<Publication>,
        max_size: usize,
        ttl: Duration,
        now: Instant,
        now_ms: u64,
    ) -> Self {
        let mut history = Self::new(epoch, max_size, ttl);
        history.top = top;
        for publication in publications {
            history.keep(publication, now, now_ms);
        }
        history.expire(now);
        history
    }

    /// Takes a publication already stamped elsewhere, in stream order.
    pub fn apply(&mut self, publication: Publication, now: Instant, now_ms: u64) -> Applied {
        let Some(position) = publication.position.as_ref() else {
            return Applied::Duplicate;
        };
        if position.epoch != self.epoch {
            // The stream started over (its keys expired, or the broker
            // lost them): only its first publication can follow on.
            if position.offset != 1 {
                return Applied::Gap { from: 1 };
            }
            self.epoch.clone_from(&position.epoch);
            self.top = 0;
            self.entries.clear();
        }
        if position.offset <= self.top {
            return Applied::Duplicate;
        }
        if position.offset > self.top + 1 {
            return Applied::Gap { from: self.top + 1 };
        }
        self.top = position.offset;
        self.keep(publication, now, now_ms);
        Applied::Appended
    }

    fn keep(&mut self, publication: Publication, now: Instant, now_ms: u64) {
        let age = Duration::from_millis(now_ms.saturating_sub(publication.time));
        self.entries.push_back(Entry {
            publication,
            expires: now + self.ttl.saturating_sub(age),
        });
        while self.entries.len() > self.max_size {
            self.entries.pop_front();
        }
    }

    /// Drops what has outlived the TTL. Entries are appended in time order,
    /// so the expired ones are always at the front.
    pub fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|entry| entry.expires <= now)
        {
            self.entries.pop_front();
        }
    }

    /// True when nothing is left to keep the channel for.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Everything after `since`, and whether that is provably complete.
    pub fn since(&mut self, since: &StreamPosition, now: Instant) -> Recovery {
        self.expire(now);
        let incomplete = Recovery {
            publications: Vec::new(),
            recovered: false,
        };
        if since.epoch != self.epoch || since.offset > self.top {
            return incomplete;
        }
        let oldest_kept = self.top + 1 - self.entries.len() as u64;
        if since.offset + 1 < oldest_kept {
            return incomplete;
        }
        let skip = (since.offset + 1 - oldest_kept) as usize;
        Recovery {
            publications: self
                .entries
                .iter()
                .skip(skip)
                .map(|entry| entry.publication.clone())
                .collect(),
            recovered: true,
        }
    }

    /// The newest `limit` publications, oldest first.
    pub fn latest(&mut self, limit: usize, now: Instant) -> Vec<Publication> {
        self.expire(now);
        let skip = self.entries.len().saturating_sub(limit);
        self.entries
            .iter()
            .skip(skip)
            .map(|entry| entry.publication.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn publication(n: u64) -> Publication {
        Publication {
            position: None,
            data: json!(n),
            sender: None,
            time: 0,
        }
    }

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition {
            epoch: epoch.into(),
            offset,
        }
    }

    fn offsets(recovery: &Recovery) -> Vec<u64> {
        recovery
            .publications
            .iter()
            .map(|p| p.position.as_ref().unwrap().offset)
            .collect()
    }

    #[test]
    fn recovers_exactly_the_gap() {
        let now = Instant::now();
        let mut history = History::new("e".into(), 10, Duration::from_secs(60));
        for n in 1..=5 {
            assert_eq!(history.append(publication(n), now), at("e", n));
        }
        let recovery = history.since(&at("e", 2), now);
        assert!(recovery.recovered);
        assert_eq!(offsets(&recovery), [3, 4, 5]);
        let up_to_date = history.since(&at("e", 5), now);
        assert!(up_to_date.recovered && up_to_date.publications.is_empty());
        // Before the first publication: everything is the gap.
        assert_eq!(offsets(&history.since(&at("e", 0), now)), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn says_so_when_size_no_longer_covers_the_gap() {
        let now = Instant::now();
        let mut history = History::new("e".into(), 3, Duration::from_secs(60));
        for n in 1..=6 {
            history.append(publication(n), now);
        }
        // Kept: 4, 5, 6. From 3 the gap is covered; from 2 it is not.
        assert_eq!(offsets(&history.since(&at("e", 3), now)), [4, 5, 6]);
        assert!(!history.since(&at("e", 2), now).recovered);
    }

    #[test]
    fn says_so_when_ttl_no_longer_covers_the_gap() {
        let start = Instant::now();
        let mut history = History::new("e".into(), 10, Duration::from_secs(60));
        history.append(publication(1), start);
        history.append(publication(2), start + Duration::from_secs(30));
        let later = start + Duration::from_secs(61);
        assert!(!history.since(&at("e", 0), later).recovered);
        assert_eq!(offsets(&history.since(&at("e", 1), later)), [2]);
    }

    #[test]
    fn other_epochs_and_future_offsets_are_not_recovered() {
        let now = Instant::now();
        let mut history = History::new("e".into(), 10, Duration::from_secs(60));
        history.append(publication(1), now);
        assert!(!history.since(&at("old", 1), now).recovered);
        assert!(!history.since(&at("e", 9), now).recovered);
    }

    #[test]
    fn latest_returns_the_newest_oldest_first() {
        let now = Instant::now();
        let mut history = History::new("e".into(), 10, Duration::from_secs(60));
        for n in 1..=5 {
            history.append(publication(n), now);
        }
        let latest: Vec<_> = history
            .latest(2, now)
            .iter()
            .map(|p| p.data.clone())
            .collect();
        assert_eq!(latest, [json!(4), json!(5)]);
        assert_eq!(history.latest(50, now).len(), 5);
    }

    fn stamped(epoch: &str, offset: u64, time: u64) -> Publication {
        Publication {
            position: Some(at(epoch, offset)),
            data: json!(offset),
            sender: None,
            time,
        }
    }

    #[test]
    fn a_copy_takes_stamped_publications_in_order_and_reports_gaps() {
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        let kept = vec![stamped("e", 3, 1_000), stamped("e", 4, 1_000)];
        let mut history = History::restore("e".into(), 4, kept, 10, ttl, now, 1_000);
        assert_eq!(history.position(), at("e", 4));
        assert_eq!(offsets(&history.since(&at("e", 2), now)), [3, 4]);
        assert!(!history.since(&at("e", 1), now).recovered);

        assert_eq!(
            history.apply(stamped("e", 4, 1_000), now, 1_000),
            Applied::Duplicate
        );
        assert_eq!(
            history.apply(stamped("e", 5, 1_000), now, 1_000),
            Applied::Appended
        );
        assert_eq!(
            history.apply(stamped("e", 7, 1_000), now, 1_000),
            Applied::Gap { from: 6 }
        );
        assert_eq!(history.position(), at("e", 5));
        // A new epoch follows on only from its first publication.
        assert_eq!(
            history.apply(stamped("f", 2, 1_000), now, 1_000),
            Applied::Gap { from: 1 }
        );
        assert_eq!(
            history.apply(stamped("f", 1, 1_000), now, 1_000),
            Applied::Appended
        );
        assert_eq!(history.position(), at("f", 1));
        assert!(!history.since(&at("e", 5), now).recovered);
    }

    #[test]
    fn a_copy_ages_publications_by_their_publication_time() {
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        let kept = vec![stamped("e", 1, 0), stamped("e", 2, 50_000)];
        let mut history = History::restore("e".into(), 2, kept, 10, ttl, now, 70_000);
        // Published 70 s ago: already past the 60 s TTL.
        assert_eq!(offsets(&history.since(&at("e", 1), now)), [2]);
        history.expire(now + Duration::from_secs(41));
        assert!(history.is_empty());
    }
}
