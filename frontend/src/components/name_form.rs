//! Asks for a display name when a page needs one and none is remembered.

use leptos::prelude::*;
use rookery_common::user::{MAX_DISPLAY_NAME_CHARS, normalize_display_name};

use crate::identity::use_identity;
use crate::socket::use_connection;

#[component]
pub fn NameForm(#[prop(into)] submit_label: String) -> impl IntoView {
    let identity = use_identity();
    let connection = use_connection();
    let draft = RwSignal::new(identity.name.get_untracked().unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        match normalize_display_name(&draft.get_untracked()) {
            Some(name) => {
                error.set(None);
                identity.set_name(name);
                connection.name_changed();
            }
            None => error.set(Some(format!(
                "Choose a name of 1 to {MAX_DISPLAY_NAME_CHARS} characters."
            ))),
        }
    };
    view! {
        <form class="name-form" on:submit=on_submit>
            <label for="display-name">"Your name"</label>
            <input
                id="display-name"
                name="display-name"
                autocomplete="nickname"
                maxlength=MAX_DISPLAY_NAME_CHARS
                bind:value=draft
            />
            <button type="submit">{submit_label}</button>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
        </form>
    }
}
