//! Who is in one channel: one member per user, however many connections.
//!
//! On one node a member is counted per connection ([`Presence::join`]); in
//! a cluster per lease, each connection's entry in Redis
//! ([`Presence::join_lease`]), so a user on two nodes is one member and a
//! lease seen twice (its own event after a reload) counts once.

use std::collections::HashMap;

use rookery_common::{UserId, UserInfo};

#[derive(Debug, Default)]
pub struct Presence {
    members: HashMap<UserId, Member>,
    /// Cluster mode: lease id -> its user.
    leases: HashMap<String, UserId>,
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

    /// Counts a lease; true when it makes `info.user` a new member. A lease
    /// already counted changes nothing.
    pub fn join_lease(&mut self, lease: &str, info: &UserInfo) -> bool {
        if self.leases.contains_key(lease) {
            return false;
        }
        self.leases.insert(lease.to_owned(), info.user.clone());
        self.join(info)
    }

    /// Forgets a lease; returns the member when it was their last.
    pub fn leave_lease(&mut self, lease: &str) -> Option<UserInfo> {
        let user = self.leases.remove(lease)?;
        self.leave(&user)
    }

    /// The lease ids counted, in no order.
    pub fn leases(&self) -> impl Iterator<Item = &str> {
        self.leases.keys().map(String::as_str)
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

    #[test]
    fn leases_count_once_and_make_one_member_per_user() {
        let mut presence = Presence::default();
        let ada = UserInfo::new(UserId("ada".into()), "Ada".into());
        assert!(presence.join_lease("n1/1", &ada));
        assert!(!presence.join_lease("n1/1", &ada), "the same lease again");
        assert!(!presence.join_lease("n2/7", &ada), "Ada on a second node");
        assert_eq!(presence.n_members(), 1);
        assert_eq!(presence.leave_lease("n1/1"), None);
        assert_eq!(presence.leave_lease("n1/1"), None, "gone already");
        assert_eq!(presence.leave_lease("n2/7"), Some(ada));
        assert_eq!(presence.n_members(), 0);
    }
}
