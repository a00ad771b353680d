//! `/notes/{id}`: one note, edited by everyone who has it open. The title
//! and body are this browser's copy (yrs), so typing never waits for the
//! network; others' edits arrive without moving the caret; who is here,
//! where their cursors are, and whether everything is saved are shown; a
//! Markdown preview replaces the text on request.

use std::rc::Rc;

use gloo_timers::callback::Interval;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use rookery_common::notes::{MAX_TITLE_CHARS, PeerCursor, PeerState, PeerUser, is_valid_note_id};
use rookery_common::{Bytes, ChannelName};

use crate::components::connection_status::ConnectionStatus;
use crate::components::name_form::NameGate;
use crate::identity::use_identity;
use crate::notes::copies;
use crate::notes::document::{Field, NoteDoc};
use crate::notes::list::display_title;
use crate::notes::markdown;
use crate::notes::peers::{Peer, Peers, RENEW_EVERY_MS};
use crate::notes::save::{SaveState, SaveTracker};
use crate::notes::text::byte_index;
use crate::pages::not_found::NotFoundPage;
use crate::socket::{DocEvent, use_connection};

#[component]
pub fn NoteEditorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").filter(|id| is_valid_note_id(id));
    move || match id() {
        None => NotFoundPage().into_any(),
        Some(id) => view! {
            <NameGate
                heading="Note"
                reason="Choose the name others will see next to your cursor."
                submit_label="Open note"
            >
                <NoteEditor id=id.clone() />
            </NameGate>
        }
        .into_any(),
    }
}

/// 53 random bits, as Yjs picks client ids.
fn random_client_id() -> u64 {
    let high = (js_sys::Math::random() * f64::from(1u32 << 21)) as u64;
    let low = (js_sys::Math::random() * f64::from(u32::MAX)) as u64;
    ((high << 32) | low).max(1)
}

/// A selection as relative positions, to restore after a remote edit.
struct SavedSelection {
    start: Vec<u8>,
    end: Vec<u8>,
    backward: bool,
}

impl SavedSelection {
    fn capture(
        doc: &NoteDoc,
        field: Field,
        start: u32,
        end: u32,
        direction: Option<&str>,
    ) -> Option<Self> {
        Some(Self {
            start: doc.sticky(field, start)?,
            end: doc.sticky(field, end)?,
            backward: direction == Some("backward"),
        })
    }

    /// Start, end and direction now.
    fn restore(&self, doc: &NoteDoc) -> Option<(u32, u32, &'static str)> {
        let start = doc.resolve(&self.start)?;
        let end = doc.resolve(&self.end).unwrap_or(start).max(start);
        let direction = if self.backward { "backward" } else { "forward" };
        Some((start, end, direction))
    }
}

struct Selections {
    body: Option<SavedSelection>,
    title: Option<SavedSelection>,
}

#[component]
fn NoteEditor(id: String) -> impl IntoView {
    let connection = use_connection();
    let identity = use_identity();
    let channel = ChannelName::new("notes", &id).expect("checked by the page");
    let copy = copies::copy_of(&id, random_client_id);
    let client = copy.doc.client_id();
    let doc = StoredValue::new_local(copy);
    let peers_state = StoredValue::new_local(Peers::new(client));
    let last_announced = StoredValue::new_local(Vec::<u8>::new());

    let title = RwSignal::new(String::new());
    let body = RwSignal::new(String::new());
    let peers = RwSignal::new(Vec::<Peer>::new());
    let save = RwSignal::new(SaveTracker::default());
    let loaded = RwSignal::new(false);
    let deleted = RwSignal::new(false);
    let refused = RwSignal::new(None::<String>);
    let preview = RwSignal::new(false);
    let body_ref = NodeRef::<html::Textarea>::new();
    let title_ref = NodeRef::<html::Input>::new();
    let layer_ref = NodeRef::<html::Div>::new();

    // --- this editor's awareness ------------------------------------------
    let announce = {
        let channel = channel.clone();
        move |force: bool| {
            let cursor = body_ref.get_untracked().and_then(|area| {
                let start = area.selection_start().ok().flatten()?;
                let end = area.selection_end().ok().flatten()?;
                let backward =
                    area.selection_direction().ok().flatten().as_deref() == Some("backward");
                let (anchor, head) = if backward { (end, start) } else { (start, end) };
                let doc = doc.get_value();
                Some(PeerCursor {
                    anchor: Bytes(doc.sticky(Field::Body, anchor)?),
                    head: Bytes(doc.sticky(Field::Body, head)?),
                })
            });
            let me = connection.me.get_untracked();
            let state = PeerState {
                user: PeerUser {
                    name: me
                        .as_ref()
                        .map(|me| me.name.clone())
                        .or_else(|| identity.name.get_untracked())
                        .unwrap_or_default(),
                    color: me.map_or_else(|| "#777777".to_owned(), |me| me.color),
                },
                cursor,
            };
            let fingerprint = serde_json::to_vec(&state).unwrap_or_default();
            if !force && last_announced.with_value(|last| *last == fingerprint) {
                return;
            }
            last_announced.set_value(fingerprint);
            let update = doc.with_value(|copy| copy.awareness.borrow_mut().encode(Some(&state)));
            connection.doc_awareness(&channel, update);
        }
    };

    // --- applying what others did --------------------------------------------
    // Selections in both fields, as relative positions, before a remote
    // update; restored where their text went after it.
    let selections = move || -> Selections {
        let doc = doc.get_value();
        Selections {
            body: body_ref.get_untracked().and_then(|area| {
                SavedSelection::capture(
                    &doc,
                    Field::Body,
                    area.selection_start().ok().flatten()?,
                    area.selection_end().ok().flatten()?,
                    area.selection_direction().ok().flatten().as_deref(),
                )
            }),
            title: title_ref.get_untracked().and_then(|input| {
                SavedSelection::capture(
                    &doc,
                    Field::Title,
                    input.selection_start().ok().flatten()?,
                    input.selection_end().ok().flatten()?,
                    input.selection_direction().ok().flatten().as_deref(),
                )
            }),
        }
    };
    // Puts the document's text into the fields where it differs.
    let show_document = move |saved: Selections| {
        let doc = doc.get_value();
        let new_body = doc.get(Field::Body);
        let new_title = doc.get(Field::Title);
        if let Some(area) = body_ref.get_untracked()
            && area.value() != new_body
        {
            area.set_value(&new_body);
            if let Some((start, end, direction)) = saved.body.and_then(|s| s.restore(&doc)) {
                let _ = area.set_selection_range_with_direction(start, end, direction);
            }
        }
        if let Some(input) = title_ref.get_untracked()
            && input.value() != new_title
        {
            input.set_value(&new_title);
            if let Some((start, end, direction)) = saved.title.and_then(|s| s.restore(&doc)) {
                let _ = input.set_selection_range_with_direction(start, end, direction);
            }
        }
        body.set(new_body);
        title.set(new_title);
    };

    // A copy this tab already holds (edits made before leaving the page,
    // perhaps offline) shows at once, before the sync.
    Effect::new(move |_| {
        if body_ref.get().is_some() && title_ref.get().is_some() {
            show_document(Selections {
                body: None,
                title: None,
            });
        }
    });

    let send_update = {
        let channel = channel.clone();
        move |update: Vec<u8>| {
            connection.doc_update(&channel, update, move |result| {
                save.update(|save| save.answered(result.is_ok()));
                if save.with_untracked(|save| save.state() == SaveState::Saved) {
                    doc.get_value().confirmed();
                }
            });
        }
    };

    {
        let channel = channel.clone();
        let announce = announce.clone();
        let send_update = send_update.clone();
        let note_id = id.clone();
        connection.join_document(
            &channel,
            move || doc.get_value().state_vector(),
            move |event| match event {
                DocEvent::Synced {
                    update,
                    state_vector,
                } => {
                    let saved = selections();
                    let doc_now = doc.get_value();
                    if let Err(error) = doc_now.apply_update(&update) {
                        leptos::logging::warn!(
                            "rookery: the note's sync update was refused: {error}"
                        );
                    }
                    show_document(saved);
                    peers_state.update_value(Peers::clear);
                    peers.set(Vec::new());
                    // What we have and the server lacks: edits made offline,
                    // or sent and never answered.
                    let force = save.with_untracked(SaveTracker::must_confirm);
                    let missing = doc_now.missing_for(&state_vector, force).ok().flatten();
                    save.update(|save| save.resynced(missing.is_some()));
                    if let Some(missing) = missing {
                        send_update(missing);
                    }
                    loaded.set(true);
                    refused.set(None);
                    doc.with_value(|copy| copy.awareness.borrow_mut().rejoined());
                    announce(true);
                }
                DocEvent::Update(update) => {
                    let saved = selections();
                    if doc.get_value().apply_update(&update).is_ok() {
                        show_document(saved);
                    }
                }
                DocEvent::Awareness(update) => {
                    let now = js_sys::Date::now();
                    let present = peers_state.try_update_value(|peers| {
                        peers.apply(&update, now).map(|()| peers.present())
                    });
                    if let Some(Ok(present)) = present {
                        peers.set(present);
                    }
                }
                DocEvent::Interrupted => {
                    save.update(SaveTracker::interrupted);
                    peers_state.update_value(Peers::clear);
                    peers.set(Vec::new());
                }
                DocEvent::Deleted => {
                    copies::forget(&note_id);
                    deleted.set(true);
                    save.update(SaveTracker::interrupted);
                }
                DocEvent::Refused { message, .. } => refused.set(Some(message)),
            },
        );
    }

    // Renew our awareness before others drop it; forget peers who vanished.
    let renew = {
        let announce = announce.clone();
        Interval::new(RENEW_EVERY_MS, move || {
            if save.with_untracked(|save| save.synced) && !deleted.get_untracked() {
                announce(true);
            }
            let now = js_sys::Date::now();
            let expired =
                peers_state.try_update_value(|peers| peers.expire(now).then(|| peers.present()));
            if let Some(Some(present)) = expired {
                peers.set(present);
            }
        })
    };
    let renew = StoredValue::new_local(Some(renew));
    // Closing the tab with edits the server does not hold yet loses them:
    // the browser asks first. (Moving between pages keeps them: the copy
    // stays in this tab.)
    let unload_guard = window_event_listener(leptos::ev::beforeunload, move |event| {
        let state = save.with_untracked(SaveTracker::state);
        if matches!(
            state,
            SaveState::Saving | SaveState::NotSaved | SaveState::Offline { unsent: true }
        ) {
            event.prevent_default();
            event.set_return_value("");
        }
    });
    let unload_guard = StoredValue::new_local(Some(unload_guard));
    {
        let channel = channel.clone();
        on_cleanup(move || {
            renew.update_value(|renew| drop(renew.take()));
            unload_guard.update_value(|guard| {
                if let Some(guard) = guard.take() {
                    guard.remove();
                }
            });
            connection.leave_document(&channel);
        });
    }

    // --- local edits ------------------------------------------------------------
    let local_edit = {
        let send_update = send_update.clone();
        move |field: Field, value: String| {
            let Some(update) = doc.get_value().edit(field, &value) else {
                return;
            };
            match field {
                Field::Body => body.set(value),
                Field::Title => title.set(value),
            }
            let synced = save.with_untracked(|save| save.synced);
            save.update(SaveTracker::edited);
            if synced {
                send_update(update);
            }
        }
    };
    let on_body_input = {
        let local_edit = local_edit.clone();
        let announce = announce.clone();
        move |event: leptos::ev::Event| {
            local_edit(Field::Body, event_target_value(&event));
            announce(false);
        }
    };
    let on_title_input =
        move |event: leptos::ev::Event| local_edit(Field::Title, event_target_value(&event));
    let caret_moved = StoredValue::new_local(Rc::new(move || announce(false)) as Rc<dyn Fn()>);
    let on_caret = move || caret_moved.with_value(|moved| moved());
    let on_scroll = move |_| {
        if let (Some(area), Some(layer)) = (body_ref.get_untracked(), layer_ref.get_untracked()) {
            layer.set_scroll_top(area.scroll_top());
        }
    };

    // Others' carets, as markers in a copy of the text laid over the field.
    let carets = Memo::new(move |_| {
        let text = body.get();
        let doc = doc.get_value();
        let mut marks: Vec<(usize, Peer)> = peers
            .get()
            .into_iter()
            .filter_map(|peer| {
                let head = doc.resolve(&peer.cursor.as_ref()?.head.0)?;
                Some((byte_index(&text, head), peer))
            })
            .collect();
        marks.sort_by_key(|(at, _)| *at);
        let mut segments = Vec::with_capacity(marks.len() * 2 + 1);
        let mut from = 0;
        for (at, peer) in marks {
            segments.push(Segment::Text(text[from..at].to_owned()));
            segments.push(Segment::Caret(peer, text[..at].encode_utf16().count()));
            from = at;
        }
        segments.push(Segment::Text(text[from..].to_owned()));
        segments
    });

    let save_state = move || save.with(SaveTracker::state);
    let me = move || {
        connection
            .me
            .get()
            .map(|me| (me.name, me.color))
            .unwrap_or_else(|| (identity.name.get().unwrap_or_default(), "#777777".into()))
    };
    let page_title = move || display_title(&title.get()).to_owned();

    view! {
        <main
            class="page note"
            data-loaded=move || loaded.get().to_string()
            data-client=client.to_string()
        >
            <header class="bar">
                <a class="back" href="/notes">"← All notes"</a>
                <p class="save-state" data-state=move || save_state().slug() role="status" aria-live="polite">
                    {move || save_state().label()}
                </p>
                <ConnectionStatus />
            </header>
            <Show when=move || deleted.get()>
                <p class="error" role="alert">"This note was deleted. What you see here is no longer kept."</p>
            </Show>
            <Show when=move || refused.get().is_some()>
                <p class="error" role="alert">{move || refused.get()}</p>
            </Show>
            <label class="visually-hidden" for="note-title">"Title"</label>
            <input
                id="note-title"
                class="note-title"
                node_ref=title_ref
                maxlength=MAX_TITLE_CHARS
                placeholder="Untitled"
                autocomplete="off"
                readonly=move || deleted.get()
                on:input=on_title_input
                aria-description=page_title
            />
            <section class="peers" aria-label="Who's here">
                <ul class="peer-list">
                    <li class="peer me" style:--peer-color=move || me().1>
                        {move || format!("{} (you)", me().0)}
                    </li>
                    <For
                        each=move || peers.get()
                        key=|peer| (peer.client, peer.name.clone(), peer.color.clone())
                        children=move |peer| {
                            view! {
                                <li class="peer" style:--peer-color=peer.color.clone()>{peer.name.clone()}</li>
                            }
                        }
                    />
                </ul>
                <button type="button" class="secondary" aria-pressed=move || preview.get().to_string() on:click=move |_| preview.update(|p| *p = !*p)>
                    {move || if preview.get() { "Edit" } else { "Preview" }}
                </button>
            </section>
            <div class="note-surface" hidden=move || preview.get()>
                <div class="note-text cursor-layer" aria-hidden="true" node_ref=layer_ref>
                    {move || carets.get().into_iter().map(render_segment).collect_view()}
                    <span>" "</span>
                </div>
                <label class="visually-hidden" for="note-body">"Note text"</label>
                <textarea
                    id="note-body"
                    class="note-text note-body"
                    node_ref=body_ref
                    placeholder="Write here. Markdown works: # heading, **bold**, - lists."
                    spellcheck="true"
                    readonly=move || deleted.get()
                    on:input=on_body_input
                    on:keyup=move |_| on_caret()
                    on:mouseup=move |_| on_caret()
                    on:select=move |_| on_caret()
                    on:focus=move |_| on_caret()
                    on:scroll=on_scroll
                ></textarea>
            </div>
            <Show when=move || preview.get()>
                <article class="note-preview" aria-label="Preview" inner_html=move || markdown::render(&body.get())></article>
            </Show>
        </main>
    }
}

/// A piece of the caret layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    /// Another editor's caret, with its UTF-16 offset (for tests and
    /// assistive tools).
    Caret(Peer, usize),
}

fn render_segment(segment: Segment) -> AnyView {
    match segment {
        Segment::Text(text) => view! { <span>{text}</span> }.into_any(),
        Segment::Caret(peer, offset) => view! {
            <span
                class="remote-caret"
                style:--peer-color=peer.color.clone()
                data-name=peer.name.clone()
                data-offset=offset.to_string()
            >
                <span class="remote-caret-label">{peer.name.clone()}</span>
            </span>
        }
        .into_any(),
    }
}
