//! The connection state every page shows: connecting, live, reconnecting in
//! N s, or offline.

use leptos::prelude::*;

use crate::socket::{Status, use_connection};

#[component]
pub fn ConnectionStatus() -> impl IntoView {
    let connection = use_connection();
    let label = move || match connection.status.get() {
        Status::Connecting => "Connecting…".to_owned(),
        Status::Live => "Live".to_owned(),
        Status::Reconnecting { in_secs } => format!("Reconnecting in {in_secs} s"),
        Status::Offline { reason } => format!("Offline: {reason}"),
    };
    let state = move || match connection.status.get() {
        Status::Connecting => "connecting",
        Status::Live => "live",
        Status::Reconnecting { .. } => "reconnecting",
        Status::Offline { .. } => "offline",
    };
    view! {
        <p class="connection-status" data-state=state role="status" aria-live="polite">
            <span class="dot" aria-hidden="true"></span>
            {label}
        </p>
    }
}
