//! The reconnect delay a client waits: exponential with full jitter, capped.
//!
//! Full jitter (a uniform draw between zero and the exponential bound) spreads
//! a fleet of clients that lost the same server over the whole window instead
//! of bringing them back in waves.

/// Reconnect timing for one client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial_ms: 500,
            max_ms: 20_000,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 for the first retry), given a
    /// uniform random number in `[0, 1)`.
    pub fn delay_ms(&self, attempt: u32, random: f64) -> u64 {
        let bound = self
            .initial_ms
            .saturating_mul(1_u64 << attempt.min(20))
            .min(self.max_ms);
        // Never zero, so a tight loop can't form even with random == 0.
        let floor = self.initial_ms / 4;
        floor + ((bound - floor.min(bound)) as f64 * random.clamp(0.0, 1.0)) as u64
    }

    /// Delay for a close code that asks to come back at once: a short jitter
    /// only.
    pub fn immediate_ms(&self, random: f64) -> u64 {
        (self.initial_ms as f64 * random.clamp(0.0, 1.0)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay_ms(0, 0.999_999), 499);
        assert_eq!(backoff.delay_ms(1, 0.999_999), 999);
        assert_eq!(backoff.delay_ms(3, 0.999_999), 3_999);
        assert_eq!(backoff.delay_ms(30, 0.999_999), 19_999);
        assert_eq!(backoff.delay_ms(30, 0.0), 125);
        for attempt in 0..40 {
            for random in [0.0, 0.3, 0.99] {
                let delay = backoff.delay_ms(attempt, random);
                assert!((125..=20_000).contains(&delay));
            }
        }
    }
}
