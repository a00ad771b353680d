//! `/notes`: every note, most recently edited first, kept current as others
//! create, rename, edit and delete; create, rename and delete (after a
//! confirmation) from here.

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;
use rookery_common::notes::{MAX_TITLE_CHARS, NOTES_LIST_CHANNEL};
use rookery_common::{ChannelName, ClientMessage, NoteListEvent, ServerMessage};

use crate::components::connection_status::ConnectionStatus;
use crate::components::name_form::NameGate;
use crate::notes::list::{NoteList, display_title};
use crate::socket::{ChannelEvent, Connection, use_connection};

#[component]
pub fn NotesListPage() -> impl IntoView {
    view! {
        <NameGate
            heading="Notes"
            reason="Choose the name others will see while you edit."
            submit_label="Open notes"
        >
            <NotesList />
        </NameGate>
    }
}

/// What one row shows besides the note itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowMode {
    Renaming,
    ConfirmingDelete,
}

#[component]
fn NotesList() -> impl IntoView {
    let connection = use_connection();
    let navigate = use_navigate();
    let list = RwSignal::new(NoteList::default());
    let error = RwSignal::new(None::<String>);
    let channel = ChannelName::parse(NOTES_LIST_CHANNEL).expect("a valid channel name");

    // Subscribe first, then list: an event between the two is not lost,
    // and every (re)subscription lists again.
    connection.subscribe(&channel, None, move |event| match event {
        ChannelEvent::Subscribed { .. } => fetch_list(connection, list, error),
        ChannelEvent::Publication(publication) => {
            if let Ok(event) = serde_json::from_value::<NoteListEvent>(publication.data) {
                list.update(|list| list.apply(event));
            }
        }
        ChannelEvent::Refused { message, .. } => error.set(Some(message)),
        _ => {}
    });
    on_cleanup(move || connection.unsubscribe(&channel));

    let new_title = RwSignal::new(String::new());
    let on_create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let title = new_title.get_untracked().trim().to_owned();
        let navigate = navigate.clone();
        connection.request(
            |id| ClientMessage::NoteCreate { id, title },
            move |reply| match reply {
                Ok(ServerMessage::NoteCreated { note, .. }) => {
                    new_title.set(String::new());
                    navigate(&format!("/notes/{}", note.id), NavigateOptions::default());
                }
                Ok(_) => {}
                Err(message) => error.set(Some(format!("Could not create the note: {message}"))),
            },
        );
    };

    // At most one row is being renamed or confirmed at a time.
    let editing = RwSignal::new(None::<(String, RowMode)>);

    view! {
        <main class="page notes" data-loaded=move || list.with(|l| l.loaded).to_string()>
            <header class="bar">
                <h1>"Notes"</h1>
                <ConnectionStatus />
            </header>
            <form class="card new-note" on:submit=on_create>
                <label for="new-note-title">"New note title"</label>
                <input
                    id="new-note-title"
                    name="title"
                    maxlength=MAX_TITLE_CHARS
                    placeholder="Untitled"
                    autocomplete="off"
                    bind:value=new_title
                />
                <button type="submit">"Create note"</button>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <ul class="note-list" aria-label="Notes">
                <For
                    each=move || list.with(|l| l.notes.clone())
                    key=|note| (note.id.clone(), note.title.clone(), note.updated_at)
                    children=move |note| {
                        view! { <NoteRow note=note editing=editing error=error /> }
                    }
                />
            </ul>
            <Show when=move || list.with(|l| l.loaded && l.notes.is_empty())>
                <p class="empty">"No notes yet. Create the first one above."</p>
            </Show>
        </main>
    }
}

fn fetch_list(connection: Connection, list: RwSignal<NoteList>, error: RwSignal<Option<String>>) {
    list.update(NoteList::requested);
    connection.request(
        |id| ClientMessage::NoteList { id },
        move |reply| match reply {
            Ok(ServerMessage::Notes { notes, .. }) => list.update(|list| list.replace(notes)),
            Ok(_) => {}
            Err(message) => error.set(Some(format!("Could not list the notes: {message}"))),
        },
    );
}

#[component]
fn NoteRow(
    note: rookery_common::NoteSummary,
    editing: RwSignal<Option<(String, RowMode)>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let connection = use_connection();
    let id = note.id.clone();
    let title = display_title(&note.title).to_owned();
    let mode = {
        let id = id.clone();
        move || {
            editing.with(|editing| match editing {
                Some((editing_id, mode)) if *editing_id == id => Some(mode.clone()),
                _ => None,
            })
        }
    };
    let draft = RwSignal::new(note.title.clone());
    let close = move || editing.set(None);

    let rename = {
        let id = id.clone();
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let note = id.clone();
            let title = draft.get_untracked().trim().to_owned();
            connection.request(
                |id| ClientMessage::NoteRename { id, note, title },
                move |reply| match reply {
                    Ok(_) => close(),
                    Err(message) => error.set(Some(format!("Could not rename: {message}"))),
                },
            );
        }
    };
    let delete = {
        let id = id.clone();
        move |_| {
            let note = id.clone();
            connection.request(
                |id| ClientMessage::NoteDelete { id, note },
                move |reply| match reply {
                    Ok(_) => close(),
                    Err(message) => error.set(Some(format!("Could not delete: {message}"))),
                },
            );
        }
    };
    let start = {
        let id = id.clone();
        move |mode: RowMode| editing.set(Some((id.clone(), mode)))
    };
    let start_rename = start.clone();
    let start_delete = start;
    let edited = format_edit_time(note.updated_at);
    let href = format!("/notes/{id}");
    let rename_label = format!("Rename {title}");
    let delete_label = format!("Delete {title}");
    let question = format!("Delete “{title}”? This cannot be undone.");
    let rename_field = format!("rename-{id}");

    view! {
        <li class="note-item" data-note-id=id.clone()>
            {move || match mode() {
                None => view! {
                    <a class="note-link" href=href.clone()>{title.clone()}</a>
                    <span class="note-edited">{edited.clone()}</span>
                    <span class="note-actions">
                        <button
                            type="button"
                            class="secondary"
                            aria-label=rename_label.clone()
                            on:click={
                                let start = start_rename.clone();
                                move |_| start(RowMode::Renaming)
                            }
                        >
                            "Rename"
                        </button>
                        <button
                            type="button"
                            class="danger"
                            aria-label=delete_label.clone()
                            on:click={
                                let start = start_delete.clone();
                                move |_| start(RowMode::ConfirmingDelete)
                            }
                        >
                            "Delete"
                        </button>
                    </span>
                }
                .into_any(),
                Some(RowMode::Renaming) => view! {
                    <form class="rename-form" on:submit=rename.clone()>
                        <label class="visually-hidden" for=rename_field.clone()>"New title"</label>
                        <input
                            id=rename_field.clone()
                            maxlength=MAX_TITLE_CHARS
                            autocomplete="off"
                            bind:value=draft
                        />
                        <button type="submit">"Save title"</button>
                        <button type="button" class="secondary" on:click=move |_| close()>"Cancel"</button>
                    </form>
                }
                .into_any(),
                Some(RowMode::ConfirmingDelete) => view! {
                    <div class="confirm" role="alertdialog" aria-label="Confirm deletion">
                        <p>{question.clone()}</p>
                        <button type="button" class="danger" on:click=delete.clone()>"Delete for good"</button>
                        <button type="button" class="secondary" on:click=move |_| close()>"Keep it"</button>
                    </div>
                }
                .into_any(),
            }}
        </li>
    }
}

/// "edited 14:05" today, "edited 3 Mar" before, in the browser's zone.
fn format_edit_time(updated_at: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(updated_at as f64));
    let now = js_sys::Date::new_0();
    let same_day = date.get_full_year() == now.get_full_year()
        && date.get_month() == now.get_month()
        && date.get_date() == now.get_date();
    if same_day {
        format!("edited {:02}:{:02}", date.get_hours(), date.get_minutes())
    } else {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "edited {} {}",
            date.get_date(),
            MONTHS[date.get_month() as usize % 12]
        )
    }
}
