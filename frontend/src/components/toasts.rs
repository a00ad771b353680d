//! Shows this user's notifications as toasts on every page.

use leptos::prelude::*;
use rookery_common::ChannelName;

use crate::notifications::Toasts;
use crate::socket::{ChannelEvent, use_connection};

/// How long a toast stays unless dismissed.
const TOAST_MS: u64 = 10_000;

#[component]
pub fn ToastArea() -> impl IntoView {
    let connection = use_connection();
    let toasts = RwSignal::new(Toasts::default());
    let subscribed = StoredValue::new(None::<ChannelName>);

    // Follow the user id the server gives us: subscribe to their personal
    // channel (again if it changes).
    Effect::new(move |_| {
        let me = connection.me.get();
        let channel = me.and_then(|me| ChannelName::new("notify", &me.user.0).ok());
        if subscribed.get_value() == channel {
            return;
        }
        if let Some(previous) = subscribed.get_value() {
            connection.unsubscribe(&previous);
        }
        if let Some(channel) = &channel {
            connection.subscribe(channel, None, move |event| {
                if let ChannelEvent::Publication(publication) = event {
                    let mut key = 0;
                    toasts.update(|toasts| key = toasts.push(&publication));
                    set_timeout(
                        move || toasts.update(|toasts| toasts.dismiss(key)),
                        std::time::Duration::from_millis(TOAST_MS),
                    );
                }
            });
        }
        subscribed.set_value(channel);
    });

    view! {
        <section class="toasts" aria-label="Notifications" aria-live="polite">
            <For
                each=move || toasts.with(|t| t.shown.clone())
                key=|toast| toast.key
                children=move |toast| {
                    let key = toast.key;
                    view! {
                        <div class="toast" role="status">
                            <div class="toast-text">
                                <strong class="toast-title">{toast.title}</strong>
                                {toast.body.map(|body| view! { <p class="toast-body">{body}</p> })}
                            </div>
                            <button
                                type="button"
                                class="toast-dismiss"
                                aria-label="Dismiss notification"
                                on:click=move |_| toasts.update(|t| t.dismiss(key))
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
        </section>
    }
}
