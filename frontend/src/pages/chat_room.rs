//! `/chat/{room}`: the room's messages, who is here, and a composer.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use rookery_common::ChannelName;
use rookery_common::channel::slugify;
use serde_json::json;

use crate::chat::log::ChatLog;
use crate::components::connection_status::ConnectionStatus;
use crate::components::name_form::NameGate;
use crate::pages::not_found::NotFoundPage;
use crate::socket::use_connection;

/// Messages fetched from history on entering a room.
const HISTORY_ON_JOIN: u32 = 50;

#[component]
pub fn ChatRoomPage() -> impl IntoView {
    let params = use_params_map();
    let room = move || params.read().get("room").and_then(|room| slugify(&room));
    move || match room() {
        None => NotFoundPage().into_any(),
        Some(room) => view! {
            <NameGate
                heading=format!("#{room}")
                reason="Choose the name others will see in this room."
                submit_label="Enter room"
            >
                <ChatRoom room=room.clone() />
            </NameGate>
        }
        .into_any(),
    }
}

#[component]
fn ChatRoom(room: String) -> impl IntoView {
    let connection = use_connection();
    let channel = ChannelName::new("chat", &room).expect("slugified room names are valid");
    let log = RwSignal::new(ChatLog::default());
    connection.subscribe(&channel, Some(HISTORY_ON_JOIN), move |event| {
        log.update(|log| log.apply(event));
    });
    let cleanup_channel = channel.clone();
    on_cleanup(move || connection.unsubscribe(&cleanup_channel));

    // Keep the newest message in view as messages arrive.
    let messages_ref = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        log.with(|log| log.lines.len());
        if let Some(messages) = messages_ref.get() {
            messages.set_scroll_top(messages.scroll_height());
        }
    });

    let draft = RwSignal::new(String::new());
    let send_error = RwSignal::new(None::<String>);
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let text = draft.get_untracked().trim().to_owned();
        if text.is_empty() {
            return;
        }
        draft.set(String::new());
        connection.publish(channel.clone(), json!({ "text": text }), move |result| {
            send_error.set(result.err());
        });
    };

    view! {
        <main class="page chat" data-joined=move || log.with(|l| l.joined).to_string()>
            <header class="bar">
                <h1>"#" {room.clone()}</h1>
                <ConnectionStatus />
            </header>
            <Show when=move || log.with(|l| l.refused.is_some())>
                <p class="error" role="alert">{move || log.with(|l| l.refused.clone())}</p>
            </Show>
            <Show when=move || log.with(|l| l.gap)>
                <p class="notice" role="status">"You were away longer than the room's history reaches; older messages may be missing."</p>
            </Show>
            <div class="chat-body">
                <section class="messages" aria-label="Messages" node_ref=messages_ref>
                    <ol class="message-list" aria-live="polite">
                        <For
                            each=move || log.with(|l| l.lines.clone())
                            key=|line| line.key.clone()
                            children=move |line| {
                                let (name, color) = line
                                    .sender
                                    .map(|s| (s.name, s.color))
                                    .unwrap_or_else(|| ("server".into(), "#555".into()));
                                view! {
                                    <li class="message">
                                        <span class="sender" style:color=color>{name}</span>
                                        <span class="text">{line.text}</span>
                                    </li>
                                }
                            }
                        />
                    </ol>
                    <Show when=move || log.with(|l| l.joined && l.lines.is_empty())>
                        <p class="empty">"No messages yet. Say hello!"</p>
                    </Show>
                </section>
                <aside class="members" aria-label="Who's here">
                    <h2>"Who's here"</h2>
                    <ul class="member-list">
                        <For
                            each=move || log.with(|l| l.members.clone())
                            key=|member| member.user.clone()
                            children=move |member| {
                                view! {
                                    <li class="member">
                                        <span class="swatch" style:background=member.color aria-hidden="true"></span>
                                        {member.name}
                                    </li>
                                }
                            }
                        />
                    </ul>
                </aside>
            </div>
            <form class="composer" on:submit=on_submit>
                <label for="composer-input" class="visually-hidden">"Message"</label>
                <input
                    id="composer-input"
                    name="message"
                    placeholder="Write a message"
                    autocomplete="off"
                    maxlength="2000"
                    bind:value=draft
                />
                <button type="submit">"Send"</button>
            </form>
            <Show when=move || send_error.get().is_some()>
                <p class="error" role="alert">{move || send_error.get()}</p>
            </Show>
        </main>
    }
}
