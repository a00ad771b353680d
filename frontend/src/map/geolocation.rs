//! The browser's Geolocation API: watching this device's position, with
//! errors a person can act on.

use js_sys::Reflect;
use leptos::prelude::window;
use rookery_common::Location;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoError {
    PermissionDenied,
    PositionUnavailable,
    Timeout,
    /// Geolocation only works on https (or localhost).
    InsecureContext,
    Unsupported,
}

impl GeoError {
    pub fn message(self) -> &'static str {
        match self {
            GeoError::PermissionDenied => {
                "Location permission was denied. Allow location for this site in your browser's settings, then press Share again."
            }
            GeoError::PositionUnavailable => {
                "Your position is unavailable right now (no GPS or network fix). Rookery keeps trying."
            }
            GeoError::Timeout => "Finding your position is taking long. Rookery keeps trying.",
            GeoError::InsecureContext => {
                "Browsers share location only with secure pages: open this map over https (or on localhost)."
            }
            GeoError::Unsupported => "This browser cannot share its location.",
        }
    }

    /// Whether watching goes on (the browser retries by itself).
    pub fn is_transient(self) -> bool {
        matches!(self, GeoError::PositionUnavailable | GeoError::Timeout)
    }
}

/// A running `watchPosition`; dropping it stops the watch.
pub struct Watch {
    id: i32,
    _on_position: Closure<dyn FnMut(JsValue)>,
    _on_error: Closure<dyn FnMut(JsValue)>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(geolocation) = window().navigator().geolocation() {
            geolocation.clear_watch(self.id);
        }
    }
}

/// Starts watching this device's position.
pub fn watch(
    mut on_position: impl FnMut(Location) + 'static,
    mut on_error: impl FnMut(GeoError) + 'static,
) -> Result<Watch, GeoError> {
    if !window().is_secure_context() {
        return Err(GeoError::InsecureContext);
    }
    let geolocation = window()
        .navigator()
        .geolocation()
        .map_err(|_| GeoError::Unsupported)?;
    let on_position = Closure::<dyn FnMut(JsValue)>::new(move |position: JsValue| {
        if let Some(location) = read_position(&position) {
            on_position(location);
        }
    });
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |error: JsValue| {
        let code = Reflect::get(&error, &"code".into())
            .ok()
            .and_then(|code| code.as_f64())
            .unwrap_or(2.0);
        on_error(match code as u32 {
            1 => GeoError::PermissionDenied,
            3 => GeoError::Timeout,
            _ => GeoError::PositionUnavailable,
        });
    });
    let options = web_sys::PositionOptions::new();
    options.set_enable_high_accuracy(true);
    options.set_maximum_age(5_000);
    options.set_timeout(30_000);
    let id = geolocation
        .watch_position_with_error_callback_and_options(
            on_position.as_ref().unchecked_ref(),
            Some(on_error.as_ref().unchecked_ref()),
            &options,
        )
        .map_err(|_| GeoError::Unsupported)?;
    Ok(Watch {
        id,
        _on_position: on_position,
        _on_error: on_error,
    })
}

/// Reads a `GeolocationPosition` (by field, which works in every engine).
fn read_position(position: &JsValue) -> Option<Location> {
    let coords = Reflect::get(position, &"coords".into()).ok()?;
    let number = |object: &JsValue, key: &str| {
        Reflect::get(object, &key.into())
            .ok()
            .and_then(|value| value.as_f64())
            .filter(|value| value.is_finite())
    };
    Some(Location {
        lat: number(&coords, "latitude")?,
        lon: number(&coords, "longitude")?,
        accuracy: number(&coords, "accuracy").unwrap_or(0.0),
        time: number(position, "timestamp").unwrap_or_else(js_sys::Date::now) as u64,
        speed: number(&coords, "speed"),
        heading: number(&coords, "heading"),
    })
}
