//! Channel names: `namespace:name`, validated once at the edge so the rest of
//! the code can rely on them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 32;
/// Longest name after the colon, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// A validated channel name such as `chat:lobby`.
///
/// The namespace is lowercase ASCII letters, digits, `-` and `_`, starting
/// with a letter; the name is ASCII letters, digits, `-`, `_`, `.` and `@`.
/// Both are non-empty and bounded so names are safe in URLs, metrics labels,
/// Redis keys and logs without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    #[error("channel name must be namespace:name")]
    MissingNamespace,
    #[error(
        "namespace must be 1 to {MAX_NAMESPACE_LEN} of a-z, 0-9, - and _, starting with a letter"
    )]
    BadNamespace,
    #[error("name must be 1 to {MAX_NAME_LEN} of A-Z, a-z, 0-9, -, _, . and @")]
    BadName,
}

impl ChannelName {
    pub fn parse(value: &str) -> Result<Self, ChannelNameError> {
        let (namespace, name) = value
            .split_once(':')
            .ok_or(ChannelNameError::MissingNamespace)?;
        if !is_valid_namespace(namespace) {
            return Err(ChannelNameError::BadNamespace);
        }
        if !is_valid_name(name) {
            return Err(ChannelNameError::BadName);
        }
        Ok(Self(value.to_owned()))
    }

    /// Builds `namespace:name` from its parts, validating both.
    pub fn new(namespace: &str, name: &str) -> Result<Self, ChannelNameError> {
        Self::parse(&format!("{namespace}:{name}"))
    }

    pub fn namespace(&self) -> &str {
        self.0
            .split_once(':')
            .map_or("", |(namespace, _)| namespace)
    }

    pub fn name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, name)| name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn is_valid_namespace(namespace: &str) -> bool {
    let mut bytes = namespace.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && namespace.len() <= MAX_NAMESPACE_LEN
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Turns what a person typed as a room name into a valid channel name part:
/// lowercase, spaces and other characters become `-`, runs collapse, and the
/// result is cut to [`MAX_NAME_LEN`]. Returns `None` when nothing usable is left.
pub fn slugify(input: &str) -> Option<String> {
    let mut slug = String::new();
    for c in input.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= MAX_NAME_LEN {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    (!slug.is_empty()).then_some(slug)
}

impl TryFrom<String> for ChannelName {
    type Error = ChannelNameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ChannelName> for String {
    fn from(value: ChannelName) -> Self {
        value.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_splits_valid_names() {
        let channel = ChannelName::parse("chat:lobby").unwrap();
        assert_eq!(channel.namespace(), "chat");
        assert_eq!(channel.name(), "lobby");
        assert!(ChannelName::parse("notes:3f9c-AB.x@y_z").is_ok());
    }

    #[test]
    fn rejects_each_kind_of_bad_name() {
        let check = |input: &str, expect: ChannelNameError| {
            assert_eq!(ChannelName::parse(input), Err(expect), "{input}");
        };
        check("lobby", ChannelNameError::MissingNamespace);
        check(":lobby", ChannelNameError::BadNamespace);
        check("Chat:lobby", ChannelNameError::BadNamespace);
        check("1chat:lobby", ChannelNameError::BadNamespace);
        check(
            &format!("{}:x", "a".repeat(33)),
            ChannelNameError::BadNamespace,
        );
        check("chat:", ChannelNameError::BadName);
        check("chat:a b", ChannelNameError::BadName);
        check("chat:a:b", ChannelNameError::BadName);
        check("chat:../etc", ChannelNameError::BadName);
        check("chat:é", ChannelNameError::BadName);
        check(
            &format!("chat:{}", "a".repeat(129)),
            ChannelNameError::BadName,
        );
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<ChannelName>("\"chat:ok\"").is_ok());
        assert!(serde_json::from_str::<ChannelName>("\"chat:not ok\"").is_err());
    }

    #[test]
    fn slugify_makes_room_names_valid() {
        let check = |input: &str, expect: Option<&str>| {
            assert_eq!(slugify(input).as_deref(), expect, "{input}");
        };
        check("Lobby", Some("lobby"));
        check("  Team  Standup! ", Some("team-standup"));
        check("a/b\\c", Some("a-b-c"));
        check("!!!", None);
        check("", None);
        assert_eq!(slugify(&"x".repeat(500)).unwrap().len(), MAX_NAME_LEN);
        for input in ["Ünïcödé room", "a--b", "--x--"] {
            if let Some(slug) = slugify(input) {
                assert!(is_valid_name(&slug), "{slug}");
            }
        }
    }
}
