//! Rookery's web app: Leptos, rendered in the browser.
//!
//! Layout:
//! - [`socket`]: the one module that owns the WebSocket ([`socket::Connection`]).
//! - [`identity`]: the display name and anonymous id this browser uses.
//! - [`chat`]: the chat room's state, updated by channel events.
//! - [`map`]: the live map's state, throttle, geolocation and Leaflet binding.
//! - [`notes`]: collaborative notes: the browser's copy of a note, peers,
//!   the preview, the list and the save indicator.
//! - [`config`]: the server's runtime settings (`/config.json`).
//! - [`notifications`]: this user's notifications, shown as toasts.
//! - [`pages`]: one component per route.
//! - [`components`]: pieces shared by pages.

pub mod chat;
pub mod components;
pub mod config;
pub mod identity;
pub mod map;
pub mod notes;
pub mod notifications;
pub mod pages;
pub mod socket;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::toasts::ToastArea;
use crate::identity::Identity;
use crate::pages::chat_room::ChatRoomPage;
use crate::pages::home::HomePage;
use crate::pages::map_room::MapRoomPage;
use crate::pages::not_found::NotFoundPage;
use crate::pages::note_editor::NoteEditorPage;
use crate::pages::notes_list::NotesListPage;

#[component]
pub fn App() -> impl IntoView {
    let identity = Identity::load();
    provide_context(identity);
    config::provide_app_config();
    socket::provide_connection(identity);
    view! {
        <Router>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/") view=HomePage />
                <Route path=path!("/chat/:room") view=ChatRoomPage />
                <Route path=path!("/map/:room") view=MapRoomPage />
                <Route path=path!("/notes") view=NotesListPage />
                <Route path=path!("/notes/:id") view=NoteEditorPage />
            </Routes>
            <ToastArea />
        </Router>
    }
}
