//! A room's messages and members, updated by channel events.

use rookery_common::{Publication, UserId, UserInfo};

use crate::socket::ChannelEvent;

#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    /// Unique within the log, for keyed rendering.
    pub key: String,
    pub sender: Option<UserInfo>,
    pub text: String,
    pub time_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatLog {
    pub lines: Vec<ChatLine>,
    pub members: Vec<UserInfo>,
    /// The subscription is in place: what is shown is current.
    pub joined: bool,
    /// Set when history could not cover a disconnection, so older messages
    /// may be missing above the fresh ones.
    pub gap: bool,
    pub refused: Option<String>,
}

/// Most lines kept on screen.
pub const MAX_LINES: usize = 500;

impl ChatLog {
    pub fn apply(&mut self, event: ChannelEvent) {
        match event {
            ChannelEvent::Subscribed {
                recovered,
                publications,
                members,
                ..
            } => {
                if recovered != Some(true) {
                    self.gap = recovered == Some(false) && !self.lines.is_empty();
                    self.lines.clear();
                }
                for publication in publications {
                    self.push(publication);
                }
                if let Some(members) = members {
                    self.members = members;
                }
                self.joined = true;
                self.refused = None;
            }
            ChannelEvent::Publication(publication) => self.push(publication),
            ChannelEvent::Join(member) => {
                if !self.members.iter().any(|m| m.user == member.user) {
                    self.members.push(member);
                    self.members.sort_by(|a, b| a.name.cmp(&b.name));
                }
            }
            ChannelEvent::Leave(member) => self.members.retain(|m| m.user != member.user),
            ChannelEvent::Interrupted => self.joined = false,
            ChannelEvent::Refused { message, .. } => {
                self.joined = false;
                self.refused = Some(message);
            }
            ChannelEvent::Location(_) | ChannelEvent::LocationGone { .. } => {}
        }
    }

    fn push(&mut self, publication: Publication) {
        let Some(text) = publication.data.get("text").and_then(|t| t.as_str()) else {
            return;
        };
        let key = match &publication.position {
            Some(position) => format!("{}-{}", position.epoch, position.offset),
            None => format!("t{}-{}", publication.time, self.lines.len()),
        };
        self.lines.push(ChatLine {
            key,
            sender: publication.sender,
            text: text.to_owned(),
            time_ms: publication.time,
        });
        if self.lines.len() > MAX_LINES {
            self.lines.drain(..self.lines.len() - MAX_LINES);
        }
    }

    pub fn is_member(&self, user: &UserId) -> bool {
        self.members.iter().any(|m| &m.user == user)
    }
}

#[cfg(test)]
mod tests {
    use rookery_common::StreamPosition;
    use serde_json::json;

    use super::*;

    fn publication(offset: u64, text: &str) -> Publication {
        Publication {
            position: Some(StreamPosition {
                epoch: "e".into(),
                offset,
            }),
            data: json!({ "text": text }),
            sender: None,
            time: 0,
        }
    }

    fn texts(log: &ChatLog) -> Vec<&str> {
        log.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn recovery_appends_and_a_lost_gap_replaces() {
        let mut log = ChatLog::default();
        log.apply(ChannelEvent::Subscribed {
            recovered: None,
            publications: vec![publication(1, "a")],
            members: Some(vec![]),
            locations: None,
        });
        log.apply(ChannelEvent::Publication(publication(2, "b")));
        log.apply(ChannelEvent::Interrupted);
        assert!(!log.joined);
        log.apply(ChannelEvent::Subscribed {
            recovered: Some(true),
            publications: vec![publication(3, "c")],
            members: None,
            locations: None,
        });
        assert_eq!(texts(&log), ["a", "b", "c"]);
        assert!(log.joined && !log.gap);
        log.apply(ChannelEvent::Subscribed {
            recovered: Some(false),
            publications: vec![publication(9, "fresh")],
            members: None,
            locations: None,
        });
        assert_eq!(texts(&log), ["fresh"]);
        assert!(log.gap);
    }

    #[test]
    fn members_come_and_go_once() {
        let mut log = ChatLog::default();
        let ada = UserInfo::new(UserId("ada".into()), "Ada".into());
        log.apply(ChannelEvent::Join(ada.clone()));
        log.apply(ChannelEvent::Join(ada.clone()));
        assert_eq!(log.members.len(), 1);
        log.apply(ChannelEvent::Leave(ada.clone()));
        assert!(!log.is_member(&ada.user));
    }

    #[test]
    fn non_chat_payloads_are_skipped_and_the_log_is_bounded() {
        let mut log = ChatLog::default();
        log.apply(ChannelEvent::Publication(Publication {
            position: None,
            data: json!(42),
            sender: None,
            time: 0,
        }));
        assert!(log.lines.is_empty());
        for n in 0..(MAX_LINES as u64 + 10) {
            log.apply(ChannelEvent::Publication(publication(n + 1, "x")));
        }
        assert_eq!(log.lines.len(), MAX_LINES);
    }
}
