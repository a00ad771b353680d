//! Who is in one channel: one member per user, however many connections.

use std::collections::HashMap;

use rookery_common::{UserId, UserInfo};

#[derive(Debug, Default)]
pub struct Presence {
    members: HashMap<UserId, Member>,
}

#[derive(Debug)]
struct Member {
    info: UserInfo,
    n_connections: usize,
}

impl Presence {
    /// Counts one more connection of `info.user`; returns true when that
    /// makes them a new member (their first connection).
    pub fn join(&mut self, info: &UserInfo) -> bool {
        let member = self.members.entry(info.user.clone()).or_insert(Member {
            info: info.clone(),
            n_connections: 0,
        });
        member.n_connections += 1;
        member.n_connections == 1
    }

    /// Counts one connection fewer; returns the member when it was their last.
    pub fn leave(&mut self, user: &UserId) -> Option<UserInfo> {
        let member = self.members.get_mut(user)?;
        member.n_connections -= 1;
        if member.n_connections == 0 {
            self.members.remove(user).map(|member| member.info)
        } else {
            None
        }
    }

    pub fn contains(&self, user: &UserId) -> bool {
        self.members.contains_key(user)
    }

    pub fn n_members(&self) -> usize {
        self.members.len()
    }

    /// Members sorted by name, then id, so every query answers the same way.
    pub fn members(&self) -> Vec<UserInfo> {
        let mut members: Vec<UserInfo> = self.members.values().map(|m| m.info.clone()).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.user.cmp(&b.user)));
        members
    }

    #[cfg(test)]
    pub fn n_connections(&self) -> usize {
        self.members.values().map(|m| m.n_connections).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_per_user_joining_on_first_leaving_on_last() {
        let mut presence = Presence::default();
        let ada = UserInfo::new(UserId("ada".into()), "Ada".into());
        assert!(presence.join(&ada));
        assert!(!presence.join(&ada));
        assert_eq!(presence.members().len(), 1);
        assert_eq!(presence.leave(&ada.user), None);
        assert_eq!(presence.leave(&ada.user), Some(ada.clone()));
        assert_eq!(presence.n_members(), 0);
        assert_eq!(presence.leave(&ada.user), None);
    }
}
