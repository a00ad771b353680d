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

/// Shows `children` once this browser has a display name; until then the
/// page's heading, why a name is needed, and the name form. Every page
/// that connects needs one (presence, cursors and senders show it).
#[component]
pub fn NameGate(
    #[prop(into)] heading: String,
    /// Why this page needs a name, in a sentence.
    #[prop(into)]
    reason: String,
    #[prop(into)] submit_label: String,
    children: ChildrenFn,
) -> impl IntoView {
    let identity = use_identity();
    let named = Memo::new(move |_| identity.name.with(Option::is_some));
    move || {
        if named.get() {
            children().into_any()
        } else {
            view! {
                <main class="page">
                    <header class="bar">
                        <h1>{heading.clone()}</h1>
                    </header>
                    <p>{reason.clone()}</p>
                    <NameForm submit_label=submit_label.clone() />
                </main>
            }
            .into_any()
        }
    }
}
