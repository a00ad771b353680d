//! When to ping a connection and when to give up on it.
//!
//! Any message from the client counts as a sign of life (a busy client need
//! not answer pings separately); one silent for two intervals is gone.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Heartbeat {
    interval: Duration,
    last_heard: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping.
    Ping,
    /// Close with [`rookery_common::CloseCode::HeartbeatTimeout`].
    TimedOut,
}

impl Heartbeat {
    pub fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            last_heard: now,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// What to do at a tick of the interval timer.
    pub fn tick(&self, now: Instant) -> Beat {
        if now.saturating_duration_since(self.last_heard) >= self.interval * 2 {
            Beat::TimedOut
        } else {
            Beat::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_for_two_intervals_times_out_and_any_message_resets() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut heartbeat = Heartbeat::new(Duration::from_secs(25), start);
        assert_eq!(heartbeat.tick(start + 25 * second), Beat::Ping);
        assert_eq!(heartbeat.tick(start + 49 * second), Beat::Ping);
        assert_eq!(heartbeat.tick(start + 50 * second), Beat::TimedOut);
        heartbeat.heard(start + 30 * second);
        assert_eq!(heartbeat.tick(start + 50 * second), Beat::Ping);
        assert_eq!(heartbeat.tick(start + 80 * second), Beat::TimedOut);
    }
}
