//! Who this browser is: a display name the person chose and a random
//! anonymous id, both remembered in `localStorage`, so the tabs of one
//! browser are one person in presence.

use leptos::prelude::*;
use rookery_common::user::normalize_display_name;

const NAME_KEY: &str = "rookery.name";
const ANONYMOUS_ID_KEY: &str = "rookery.anonymous_id";

#[derive(Clone, Copy)]
pub struct Identity {
    /// `None` until the person picks a name.
    pub name: RwSignal<Option<String>>,
    pub anonymous_id: StoredValue<String>,
}

impl Identity {
    pub fn load() -> Self {
        let storage = window().local_storage().ok().flatten();
        let read = |key: &str| {
            storage
                .as_ref()
                .and_then(|s| s.get_item(key).ok().flatten())
        };
        let name = read(NAME_KEY).and_then(|name| normalize_display_name(&name));
        let anonymous_id = read(ANONYMOUS_ID_KEY)
            .filter(|id| id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| {
                let id = format!(
                    "{}{}",
                    crate::socket::random_hex(),
                    crate::socket::random_hex()
                );
                if let Some(storage) = &storage {
                    let _ = storage.set_item(ANONYMOUS_ID_KEY, &id);
                }
                id
            });
        Self {
            name: RwSignal::new(name),
            anonymous_id: StoredValue::new(anonymous_id),
        }
    }

    /// Remembers a (valid, normalized) name.
    pub fn set_name(&self, name: String) {
        if let Ok(Some(storage)) = window().local_storage() {
            let _ = storage.set_item(NAME_KEY, &name);
        }
        self.name.set(Some(name));
    }
}

pub fn use_identity() -> Identity {
    expect_context::<Identity>()
}
