//! Who is on the other end of a connection, as every side sees it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 40;

/// A user's stable id: the token's subject, or `anon-…` for anonymous users.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// What others see of a user: in presence, as the sender of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub user: UserId,
    pub name: String,
    /// A CSS colour derived from the user id, so every client and every node
    /// shows the same person in the same colour without storing it.
    pub color: String,
}

impl UserInfo {
    pub fn new(user: UserId, name: String) -> Self {
        let color = color_for(&user).to_owned();
        Self { user, name, color }
    }
}

/// Twelve colours that read well on a light background and against each other.
const PALETTE: [&str; 12] = [
    "#d1495b", "#00798c", "#edae49", "#30638e", "#6a4c93", "#2a9d8f", "#e76f51", "#8ab17d",
    "#b5179e", "#3a86ff", "#8d6a9f", "#c1666b",
];

/// The colour of a user, stable across processes and builds (FNV-1a, not
/// `std`'s randomly seeded hasher).
pub fn color_for(user: &UserId) -> &'static str {
    let hash = user
        .0
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

/// Trims a display name and checks it: 1 to [`MAX_DISPLAY_NAME_CHARS`]
/// characters, no control characters.
pub fn normalize_display_name(name: &str) -> Option<String> {
    let name = name.trim();
    let n_chars = name.chars().count();
    let ok = (1..=MAX_DISPLAY_NAME_CHARS).contains(&n_chars) && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_stable_and_from_the_palette() {
        let alice = UserId("alice".into());
        assert_eq!(color_for(&alice), color_for(&UserId("alice".into())));
        assert!(PALETTE.contains(&color_for(&alice)));
        let distinct: std::collections::HashSet<_> = (0..100)
            .map(|i| color_for(&UserId(format!("user-{i}"))))
            .collect();
        assert!(distinct.len() > 6, "colours spread over the palette");
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(normalize_display_name("  Ada ").as_deref(), Some("Ada"));
        assert_eq!(normalize_display_name("   "), None);
        assert_eq!(normalize_display_name("a\u{7}b"), None);
        assert!(normalize_display_name(&"é".repeat(40)).is_some());
        assert_eq!(normalize_display_name(&"é".repeat(41)), None);
    }
}
