//! The start page: pick a display name (remembered) and a room to create or
//! join.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;
use rookery_common::channel::slugify;
use rookery_common::user::{MAX_DISPLAY_NAME_CHARS, normalize_display_name};

use crate::components::connection_status::ConnectionStatus;
use crate::identity::use_identity;
use crate::socket::use_connection;

#[component]
pub fn HomePage() -> impl IntoView {
    let identity = use_identity();
    let connection = use_connection();
    let navigate = use_navigate();
    let name = RwSignal::new(identity.name.get_untracked().unwrap_or_default());
    let room = RwSignal::new("lobby".to_owned());
    let error = RwSignal::new(None::<String>);

    // Both buttons validate the same way and differ only in where they go.
    let go = move |app: &'static str| {
        let Some(valid_name) = normalize_display_name(&name.get_untracked()) else {
            error.set(Some(format!(
                "Choose a name of 1 to {MAX_DISPLAY_NAME_CHARS} characters."
            )));
            return;
        };
        let Some(slug) = slugify(&room.get_untracked()) else {
            error.set(Some("Room names need at least one letter or digit.".into()));
            return;
        };
        error.set(None);
        if identity.name.get_untracked().as_deref() != Some(valid_name.as_str()) {
            identity.set_name(valid_name);
            connection.name_changed();
        }
        navigate(&format!("/{app}/{slug}"), NavigateOptions::default());
    };
    let go_to_map = go.clone();
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        go("chat");
    };

    view! {
        <main class="page home">
            <header class="bar">
                <h1>"Rookery"</h1>
                <ConnectionStatus />
            </header>
            <p class="lead">"Chat rooms, live maps and shared notes. Pick a name and a room; share the room's link to invite people."</p>
            <form class="card" on:submit=on_submit>
                <label for="home-name">"Your name"</label>
                <input
                    id="home-name"
                    name="name"
                    autocomplete="nickname"
                    maxlength=MAX_DISPLAY_NAME_CHARS
                    required
                    bind:value=name
                />
                <label for="home-room">"Room"</label>
                <input id="home-room" name="room" maxlength="128" required bind:value=room />
                <div class="actions">
                    <button type="submit">"Join room"</button>
                    <button type="button" class="secondary" on:click=move |_| go_to_map("map")>
                        "Open map"
                    </button>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert">{move || error.get()}</p>
                </Show>
            </form>
            <p><a class="notes-link" href="/notes">"Notes: write together →"</a></p>
        </main>
    }
}
