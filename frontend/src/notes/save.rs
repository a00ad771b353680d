//! The editor's save indicator. An edit is "saved" only when the server
//! said it stored it (`doc_saved`); edits made offline are kept in the
//! browser's copy and sent when the connection is back.

/// What the indicator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveState {
    /// Everything typed here is stored on the server.
    Saved,
    /// Updates are on their way or being stored.
    Saving,
    /// Not connected; edits (if any) wait in this browser.
    Offline { unsent: bool },
    /// The server could not store an edit; it is sent again on the next
    /// sync.
    NotSaved,
}

impl SaveState {
    pub fn label(self) -> &'static str {
        match self {
            SaveState::Saved => "Saved",
            SaveState::Saving => "Saving…",
            SaveState::Offline { unsent: true } => "Offline — edits kept here",
            SaveState::Offline { unsent: false } => "Offline",
            SaveState::NotSaved => "Not saved",
        }
    }

    /// A stable name for styling and tests.
    pub fn slug(self) -> &'static str {
        match self {
            SaveState::Saved => "saved",
            SaveState::Saving => "saving",
            SaveState::Offline { .. } => "offline",
            SaveState::NotSaved => "not-saved",
        }
    }
}

/// Counts what is in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveTracker {
    /// Joined and synced on the current connection.
    pub synced: bool,
    /// Updates sent and not yet answered.
    pub in_flight: u32,
    /// Edits made while not synced, not yet sent.
    pub unsent: bool,
    /// The last answer was a failure to store.
    pub failed: bool,
}

impl SaveTracker {
    pub fn state(&self) -> SaveState {
        if !self.synced {
            SaveState::Offline {
                unsent: self.unsent || self.in_flight > 0 || self.failed,
            }
        } else if self.in_flight > 0 {
            SaveState::Saving
        } else if self.failed {
            SaveState::NotSaved
        } else {
            SaveState::Saved
        }
    }

    /// A local edit: sent now when synced, else kept for the next sync.
    pub fn edited(&mut self) {
        if self.synced {
            self.in_flight += 1;
        } else {
            self.unsent = true;
        }
    }

    /// The server answered one update. After a failure to store, the
    /// server acknowledges nothing more of that note until a snapshot of
    /// everything it holds is stored, so a later `doc_saved` means the
    /// failed edit is stored too.
    pub fn answered(&mut self, stored: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failed = !stored;
    }

    /// Whether the next sync must send an update even if the server seems
    /// to lack nothing: to get the answer that clears a failure.
    pub fn must_confirm(&self) -> bool {
        self.failed || self.unsent
    }

    /// The connection dropped: unanswered updates count as unsent (the
    /// next sync sends whatever the server lacks).
    pub fn interrupted(&mut self) {
        self.synced = false;
        if self.in_flight > 0 || self.failed {
            self.unsent = true;
        }
        self.in_flight = 0;
    }

    /// Synced again; `sent_missing` says whether the sync itself sent our
    /// missing edits (which then await their answer; a failure stays shown
    /// until that answer).
    pub fn resynced(&mut self, sent_missing: bool) {
        self.synced = true;
        self.unsent = false;
        if sent_missing {
            self.in_flight += 1;
        } else {
            self.failed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_only_when_every_update_is_answered() {
        let mut save = SaveTracker::default();
        assert_eq!(save.state(), SaveState::Offline { unsent: false });
        save.resynced(false);
        assert_eq!(save.state(), SaveState::Saved);
        save.edited();
        save.edited();
        assert_eq!(save.state(), SaveState::Saving);
        save.answered(true);
        assert_eq!(save.state(), SaveState::Saving);
        save.answered(true);
        assert_eq!(save.state(), SaveState::Saved);
    }

    #[test]
    fn offline_edits_wait_and_go_with_the_next_sync() {
        let mut save = SaveTracker::default();
        save.resynced(false);
        save.edited();
        save.interrupted();
        assert_eq!(save.state(), SaveState::Offline { unsent: true });
        save.edited();
        assert_eq!(save.state(), SaveState::Offline { unsent: true });
        save.resynced(true);
        assert_eq!(save.state(), SaveState::Saving);
        save.answered(true);
        assert_eq!(save.state(), SaveState::Saved);
    }

    #[test]
    fn a_store_failure_is_never_shown_as_saved() {
        let mut save = SaveTracker::default();
        save.resynced(false);
        save.edited();
        save.answered(false);
        assert_eq!(save.state(), SaveState::NotSaved);
        assert!(save.must_confirm());
        // The sync after a reconnect sends an update to get it confirmed.
        save.interrupted();
        save.resynced(true);
        assert_eq!(save.state(), SaveState::Saving);
        save.answered(true);
        assert_eq!(save.state(), SaveState::Saved);
        // A later stored update confirms an earlier failure too (the
        // server stores a snapshot of everything before acknowledging).
        save.edited();
        save.answered(false);
        save.edited();
        save.answered(true);
        assert_eq!(save.state(), SaveState::Saved);
    }
}
