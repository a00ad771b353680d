//! The client-side throttle on positions: no faster than the server
//! accepts, nothing for moves smaller than the server would take, but a
//! refresh now and then so a person standing still does not expire.

use rookery_common::Location;
use rookery_common::location::distance_m;

#[derive(Debug, Clone)]
pub struct Throttle {
    min_interval_ms: f64,
    min_distance_m: f64,
    refresh_ms: f64,
    last_sent: Option<(Location, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    SendNow,
    /// Hold it and send at this time (ms), unless a newer one replaces it.
    SendAt(f64),
    /// Not worth sending.
    Skip,
}

impl Throttle {
    /// `server_min_interval_ms` and `server_min_distance_m` are the server's
    /// filters; the client keeps a margin above them so network jitter does
    /// not turn its sends into refusals.
    pub fn new(server_min_interval_ms: f64, server_min_distance_m: f64, ttl_ms: f64) -> Self {
        Self {
            min_interval_ms: server_min_interval_ms + 250.0,
            min_distance_m: server_min_distance_m.max(3.0),
            refresh_ms: ttl_ms / 4.0,
            last_sent: None,
        }
    }

    pub fn decide(&self, location: &Location, now_ms: f64) -> Decision {
        let Some((last, at)) = &self.last_sent else {
            return Decision::SendNow;
        };
        let elapsed = now_ms - at;
        if distance_m(last, location) < self.min_distance_m && elapsed < self.refresh_ms {
            return Decision::Skip;
        }
        if elapsed >= self.min_interval_ms {
            Decision::SendNow
        } else {
            Decision::SendAt(at + self.min_interval_ms)
        }
    }

    pub fn sent(&mut self, location: Location, now_ms: f64) {
        self.last_sent = Some((location, now_ms));
    }

    /// Forget what was sent (after a reconnect the next position goes at once).
    pub fn reset(&mut self) {
        self.last_sent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64) -> Location {
        Location {
            lat,
            lon: 2.0,
            accuracy: 5.0,
            time: 0,
            speed: None,
            heading: None,
        }
    }

    #[test]
    fn throttles_by_time_and_distance_and_refreshes() {
        let mut throttle = Throttle::new(750.0, 2.0, 120_000.0);
        assert_eq!(throttle.decide(&at(48.0), 0.0), Decision::SendNow);
        throttle.sent(at(48.0), 0.0);
        // 11 m later, too soon: held until the interval passes.
        assert_eq!(
            throttle.decide(&at(48.0001), 400.0),
            Decision::SendAt(1000.0)
        );
        assert_eq!(throttle.decide(&at(48.0001), 1000.0), Decision::SendNow);
        // A 1 m jitter is skipped, until a refresh is due.
        assert_eq!(throttle.decide(&at(48.000_01), 5_000.0), Decision::Skip);
        assert_eq!(throttle.decide(&at(48.000_01), 30_000.0), Decision::SendNow);
        throttle.reset();
        assert_eq!(throttle.decide(&at(48.0), 30_001.0), Decision::SendNow);
    }
}
