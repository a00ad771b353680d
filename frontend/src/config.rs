//! The server's runtime settings for the app (`/config.json`): the map's
//! tiles and the limits its client-side throttle follows.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppConfig {
    pub tiles: Tiles,
    #[serde(default)]
    pub map: Option<MapConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Tiles {
    Url {
        url: String,
        attribution: String,
    },
    /// `"none"`: the bundled offline world map.
    None(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct MapConfig {
    pub min_interval_ms: u64,
    pub min_distance_m: f64,
    pub value_ttl_ms: u64,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            min_interval_ms: 750,
            min_distance_m: 2.0,
            value_ttl_ms: 120_000,
        }
    }
}

/// The settings once loaded; `None` until then.
#[derive(Clone, Copy)]
pub struct ConfigContext(pub RwSignal<Option<AppConfig>>);

pub fn provide_app_config() {
    let config = RwSignal::new(None);
    provide_context(ConfigContext(config));
    spawn_local(async move {
        match fetch_json("/config.json").await {
            Ok(value) => match serde_wasm_bindgen_lite(&value) {
                Some(loaded) => config.set(Some(loaded)),
                None => leptos::logging::warn!("rookery: /config.json has an unexpected shape"),
            },
            Err(error) => leptos::logging::warn!("rookery: cannot load /config.json: {error:?}"),
        }
    });
}

pub fn use_app_config() -> RwSignal<Option<AppConfig>> {
    expect_context::<ConfigContext>().0
}

/// GETs a same-origin URL and parses it as JSON.
pub async fn fetch_json(url: &str) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    let response: web_sys::Response = JsFuture::from(window().fetch_with_str(url))
        .await?
        .dyn_into()?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()).into());
    }
    JsFuture::from(response.json()?).await
}

/// Reads a JS value into a Rust type through JSON text (the values here are
/// small and read once).
fn serde_wasm_bindgen_lite<T: serde::de::DeserializeOwned>(
    value: &wasm_bindgen::JsValue,
) -> Option<T> {
    let text = js_sys::JSON::stringify(value).ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}
