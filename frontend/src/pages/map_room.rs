//! `/map/{room}`: a live map of the people sharing their position in a
//! room, a Share button for this device, and the list of sharers.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use rookery_common::channel::slugify;
use rookery_common::{ChannelName, Location, SharedLocation, UserId};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::components::connection_status::ConnectionStatus;
use crate::components::name_form::NameGate;
use crate::config::{MapConfig, Tiles, fetch_json, use_app_config};
use crate::map::geolocation::{self, GeoError, Watch};
use crate::map::leaflet::{self, WorldMap};
use crate::map::state::{MapState, age_label, staleness};
use crate::map::throttle::{Decision, Throttle};
use crate::pages::not_found::NotFoundPage;
use crate::socket::{ChannelEvent, Connection, use_connection};

#[component]
pub fn MapRoomPage() -> impl IntoView {
    let params = use_params_map();
    let room = move || params.read().get("room").and_then(|room| slugify(&room));
    move || match room() {
        None => NotFoundPage().into_any(),
        Some(room) => view! {
            <NameGate
                heading=format!("Map · {room}")
                reason="Choose the name others will see next to your position."
                submit_label="Open map"
            >
                <MapRoom room=room.clone() />
            </NameGate>
        }
        .into_any(),
    }
}

/// This device's sharing.
#[derive(Debug, Clone, PartialEq)]
enum Sharing {
    Off,
    /// Waiting for the first position.
    Locating,
    On,
    Failed(String),
}

/// What the page keeps outside the reactive graph: browser handles and the
/// position pipeline.
struct Device {
    watch: Option<Watch>,
    throttle: Throttle,
    /// The newest position from the browser, sent or not.
    latest: Option<Location>,
    /// A timer is set to send `latest` when the throttle allows.
    flush_pending: bool,
}

#[component]
fn MapRoom(room: String) -> impl IntoView {
    let connection = use_connection();
    let app_config = use_app_config();
    let channel = ChannelName::new("map", &room).expect("slugified room names are valid");
    let state = RwSignal::new(MapState::default());
    let now_ms = RwSignal::new(js_sys::Date::now());
    let sharing = RwSignal::new(Sharing::Off);
    let approximate = RwSignal::new(false);
    let following = RwSignal::new(None::<UserId>);
    let transient_error = RwSignal::new(None::<String>);
    let background_notice = RwSignal::new(false);
    let map_config = move || {
        app_config
            .with_untracked(|config| config.as_ref().and_then(|c| c.map))
            .unwrap_or_default()
    };
    let device = StoredValue::new_local(Device {
        watch: None,
        throttle: throttle_for(&MapConfig::default()),
        latest: None,
        flush_pending: false,
    });
    let world = StoredValue::new_local(None::<WorldMap>);

    let sender = Sender {
        connection,
        channel: StoredValue::new(channel.clone()),
        device,
        approximate,
        transient_error,
    };

    // The room's positions; after every (re)subscribe the snapshot replaces
    // what was shown, and our own position goes again at once.
    connection.subscribe(&channel, None, move |event| {
        let resubscribed = matches!(event, ChannelEvent::Subscribed { .. });
        state.update(|state| state.apply(event));
        if resubscribed && sharing.get_untracked() == Sharing::On {
            sender.resend_now();
        }
    });

    // A clock for "updated N s ago" and fading.
    let ticker = set_interval_with_handle(
        move || now_ms.set(js_sys::Date::now()),
        std::time::Duration::from_secs(1),
    )
    .ok();

    // Browsers pause location in background tabs: say so when we are back.
    let on_visibility = Closure::<dyn FnMut()>::new(move || {
        let hidden = document().hidden();
        if hidden && sharing.get_untracked() == Sharing::On {
            background_notice.set(true);
        }
    });
    let _ = document().add_event_listener_with_callback(
        "visibilitychange",
        on_visibility.as_ref().unchecked_ref(),
    );
    let on_visibility = StoredValue::new_local(Some(on_visibility));

    let cleanup_channel = channel.clone();
    on_cleanup(move || {
        if let Some(ticker) = ticker {
            ticker.clear();
        }
        if let Some(on_visibility) = on_visibility.try_update_value(Option::take).flatten() {
            let _ = document().remove_event_listener_with_callback(
                "visibilitychange",
                on_visibility.as_ref().unchecked_ref(),
            );
        }
        let was_sharing = device
            .try_update_value(|device| device.watch.take().is_some())
            .unwrap_or(false);
        if was_sharing {
            connection.stop_sharing(&cleanup_channel);
        }
        connection.unsubscribe(&cleanup_channel);
        world.try_update_value(Option::take);
    });

    // The map, once the container and the settings are there.
    let map_ref = NodeRef::<leptos::html::Div>::new();
    let map_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let (Some(container), Some(config)) = (map_ref.get(), app_config.get()) else {
            return;
        };
        if world.with_value(Option::is_some) {
            return;
        }
        if !leaflet::is_available() {
            map_error.set(Some("The map library did not load.".into()));
            return;
        }
        device
            .update_value(|device| device.throttle = throttle_for(&config.map.unwrap_or_default()));
        let map = WorldMap::new(&container);
        if let Tiles::None(_) = &config.tiles {
            let tiles = config.tiles.clone();
            leptos::task::spawn_local(async move {
                match fetch_json("/vendor/world-atlas/countries-110m.json").await {
                    Ok(topology) => world.with_value(|map| {
                        if let Some(map) = map {
                            map.set_background(&tiles, Some(&topology));
                        }
                    }),
                    Err(_) => map_error.set(Some("The offline world map did not load.".into())),
                }
            });
        } else {
            map.set_background(&config.tiles, None);
        }
        world.set_value(Some(map));
        // Draw what arrived before the map existed.
        state.update(|_| {});
    });

    // Keep the pins in step with the room.
    Effect::new(move |_| {
        let now = now_ms.get();
        let me = connection.me.get().map(|me| me.user);
        let ttl = map_config().value_ttl_ms as f64;
        let follow = following.get();
        state.with(|state| {
            world.update_value(|world| {
                let Some(world) = world else { return };
                for shared in state.sharers.values() {
                    let age = now - shared.location.time as f64;
                    let own = me.as_ref() == Some(&shared.member.user);
                    world.upsert(shared, own, staleness(age, ttl), &age_label(age));
                }
                world.retain(&|user| state.sharers.contains_key(user));
                if let Some(shared) = follow.as_ref().and_then(|user| state.sharers.get(user)) {
                    world.center_on(shared, false);
                }
            });
        });
    });

    let share = move |_| match sharing.get_untracked() {
        Sharing::Off | Sharing::Failed(_) => sender.start(sharing),
        Sharing::Locating | Sharing::On => sender.stop(sharing),
    };
    let on_approximate = move |event: leptos::ev::Event| {
        approximate.set(event_target_checked(&event));
        if sharing.get_untracked() == Sharing::On {
            sender.resend_now();
        }
    };
    let fit_everyone = move |_| {
        let all = state.with_untracked(MapState::list);
        following.set(None);
        world.with_value(|world| {
            if let Some(world) = world {
                world.fit(&all);
            }
        });
    };
    let centre_on = move |shared: SharedLocation| {
        world.with_value(|world| {
            if let Some(world) = world {
                world.center_on(&shared, true);
            }
        });
    };

    view! {
        <main class="page map" data-joined=move || state.with(|s| s.joined).to_string()>
            <header class="bar">
                <h1>"Map · " {room.clone()}</h1>
                <ConnectionStatus />
            </header>
            <section class="share-panel" aria-label="Your location">
                <button
                    type="button"
                    class="share-button"
                    aria-pressed=move || matches!(sharing.get(), Sharing::On | Sharing::Locating).to_string()
                    on:click=share
                >
                    {move || match sharing.get() {
                        Sharing::On | Sharing::Locating => "Stop sharing",
                        Sharing::Off | Sharing::Failed(_) => "Share my location",
                    }}
                </button>
                <label class="check">
                    <input type="checkbox" prop:checked=move || approximate.get() on:change=on_approximate />
                    "Approximate (about 1 km)"
                </label>
                <p class="share-status" role="status" data-sharing=move || sharing_state(&sharing.get())>
                    {move || match sharing.get() {
                        Sharing::Off => "You are not sharing your location.".to_owned(),
                        Sharing::Locating => "Finding your position…".to_owned(),
                        Sharing::On if approximate.get() => "Sharing your approximate position (about 1 km). Keep this tab open.".to_owned(),
                        Sharing::On => "Sharing your position. Keep this tab open.".to_owned(),
                        Sharing::Failed(message) => message,
                    }}
                </p>
                <Show when=move || transient_error.get().is_some()>
                    <p class="notice" role="status">{move || transient_error.get()}</p>
                </Show>
                <Show when=move || background_notice.get()>
                    <p class="notice background-notice" role="status">
                        "Your browser pauses location updates while this tab is in the background; others may see your position as stale. Keep the map open in front while you share."
                        <button type="button" class="link" on:click=move |_| background_notice.set(false)>"OK"</button>
                    </p>
                </Show>
            </section>
            <Show when=move || state.with(|s| s.refused.is_some()) || map_error.get().is_some()>
                <p class="error" role="alert">
                    {move || state.with(|s| s.refused.clone()).or_else(|| map_error.get())}
                </p>
            </Show>
            <div class="map-body">
                <div class="world-map" node_ref=map_ref role="application" aria-label="Map of people sharing their location"></div>
                <aside class="people" aria-label="People sharing">
                    <div class="people-head">
                        <h2>"Sharing"</h2>
                        <button type="button" on:click=fit_everyone>"Fit everyone"</button>
                    </div>
                    <Show when=move || state.with(|s| s.sharers.is_empty())>
                        <p class="empty">"Nobody is sharing yet."</p>
                    </Show>
                    <ul class="people-list">
                        <For
                            each=move || state.with(MapState::list)
                            key=|shared| (shared.member.user.clone(), shared.location.time, shared.location.lat.to_bits(), shared.location.lon.to_bits())
                            children=move |shared| {
                                let user = shared.member.user.clone();
                                let follow_user = StoredValue::new(user.clone());
                                let is_followed = move || {
                                    follow_user.with_value(|user| following.get().as_ref() == Some(user))
                                };
                                let toggle_user = user.clone();
                                let name = shared.member.name.clone();
                                let time = shared.location.time as f64;
                                let target = shared.clone();
                                view! {
                                    <li class="person" data-user=user.0.clone()>
                                        <button type="button" class="person-centre" on:click=move |_| centre_on(target.clone())>
                                            <span class="swatch" style:background=shared.member.color.clone() aria-hidden="true"></span>
                                            <span class="person-name">{name.clone()}</span>
                                            <span class="person-age">{move || age_label(now_ms.get() - time)}</span>
                                            {shared.approximate.then(|| view! { <span class="badge">"approx."</span> })}
                                        </button>
                                        <button
                                            type="button"
                                            class="follow"
                                            aria-pressed=move || is_followed().to_string()
                                            aria-label=format!("Follow {name}")
                                            on:click=move |_| following.update(|f| {
                                                *f = if f.as_ref() == Some(&toggle_user) { None } else { Some(toggle_user.clone()) };
                                            })
                                        >
                                            {move || if is_followed() { "Following" } else { "Follow" }}
                                        </button>
                                    </li>
                                }
                            }
                        />
                    </ul>
                </aside>
            </div>
        </main>
    }
}

fn sharing_state(sharing: &Sharing) -> &'static str {
    match sharing {
        Sharing::Off => "off",
        Sharing::Locating => "locating",
        Sharing::On => "on",
        Sharing::Failed(_) => "failed",
    }
}

fn throttle_for(config: &MapConfig) -> Throttle {
    Throttle::new(
        config.min_interval_ms as f64,
        config.min_distance_m,
        config.value_ttl_ms as f64,
    )
}

/// Feeds this device's positions to the room, throttled.
#[derive(Clone, Copy)]
struct Sender {
    connection: Connection,
    channel: StoredValue<ChannelName>,
    device: StoredValue<Device, LocalStorage>,
    approximate: RwSignal<bool>,
    transient_error: RwSignal<Option<String>>,
}

impl Sender {
    fn start(self, sharing: RwSignal<Sharing>) {
        sharing.set(Sharing::Locating);
        self.transient_error.set(None);
        let on_position = move |location: Location| {
            self.transient_error.set(None);
            if sharing.get_untracked() == Sharing::Locating {
                sharing.set(Sharing::On);
            }
            self.device
                .update_value(|device| device.latest = Some(location));
            self.offer();
        };
        let on_error = move |error: GeoError| {
            if error.is_transient() {
                self.transient_error.set(Some(error.message().to_owned()));
            } else {
                self.device.update_value(|device| device.watch = None);
                sharing.set(Sharing::Failed(error.message().to_owned()));
            }
        };
        match geolocation::watch(on_position, on_error) {
            Ok(watch) => self
                .device
                .update_value(|device| device.watch = Some(watch)),
            Err(error) => sharing.set(Sharing::Failed(error.message().to_owned())),
        }
    }

    fn stop(self, sharing: RwSignal<Sharing>) {
        self.device.update_value(|device| {
            device.watch = None;
            device.latest = None;
            device.throttle.reset();
        });
        self.connection.stop_sharing(&self.channel.get_value());
        sharing.set(Sharing::Off);
        self.transient_error.set(None);
    }

    /// Sends the newest position now, whatever the throttle says (after a
    /// reconnect, or when precision changes).
    fn resend_now(self) {
        self.device.update_value(|device| device.throttle.reset());
        self.offer();
    }

    /// Sends the newest position if the throttle allows, or sets a timer to.
    fn offer(self) {
        let now = js_sys::Date::now();
        let decision = self.device.with_value(|device| {
            device
                .latest
                .as_ref()
                .map(|location| (device.throttle.decide(location, now), *location))
        });
        match decision {
            Some((Decision::SendNow, location)) => self.send(location, now),
            Some((Decision::SendAt(at), _)) => {
                let already = self.device.with_value(|device| device.flush_pending);
                if !already {
                    self.device
                        .update_value(|device| device.flush_pending = true);
                    set_timeout(
                        move || {
                            let _ = self
                                .device
                                .try_update_value(|device| device.flush_pending = false);
                            self.offer();
                        },
                        std::time::Duration::from_millis((at - now).max(0.0) as u64),
                    );
                }
            }
            Some((Decision::Skip, _)) | None => {}
        }
    }

    fn send(self, location: Location, now: f64) {
        if self.device.with_value(|device| device.watch.is_none()) {
            return;
        }
        self.device
            .update_value(|device| device.throttle.sent(location, now));
        let transient_error = self.transient_error;
        self.connection.locate(
            &self.channel.get_value(),
            location,
            self.approximate.get_untracked(),
            move |result| {
                // Offline is shown by the connection state; the position
                // goes again on reconnect.
                if let Err(message) = result
                    && message != "not connected"
                {
                    transient_error.set(Some(format!(
                        "The server did not take your position: {message}"
                    )));
                }
            },
        );
    }
}
