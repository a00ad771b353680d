//! A small binding to Leaflet (vendored in `assets/vendor/leaflet`, loaded
//! as a plain script) and the map the page draws: one marker and accuracy
//! circle per sharer, built as DOM elements whose data attributes say what
//! they show (tests read them).

use std::collections::HashMap;

use js_sys::{Array, Object, Reflect};
use rookery_common::location::initials;
use rookery_common::{SharedLocation, UserId};
use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;

use crate::config::Tiles;

#[wasm_bindgen]
extern "C" {
    /// `L.Map`.
    pub type LeafletMap;
    #[wasm_bindgen(js_namespace = L, js_name = map)]
    fn new_map(element: &HtmlElement, options: &JsValue) -> LeafletMap;
    #[wasm_bindgen(method, js_name = setView)]
    fn set_view(this: &LeafletMap, center: &Array, zoom: f64) -> LeafletMap;
    #[wasm_bindgen(method, js_name = fitBounds)]
    fn fit_bounds(this: &LeafletMap, bounds: &Array, options: &JsValue) -> LeafletMap;
    #[wasm_bindgen(method, js_name = panTo)]
    fn pan_to(this: &LeafletMap, center: &Array) -> LeafletMap;
    #[wasm_bindgen(method, js_name = getZoom)]
    fn get_zoom(this: &LeafletMap) -> f64;
    #[wasm_bindgen(method, js_name = remove)]
    fn remove_map(this: &LeafletMap);

    /// Any `L.Layer`.
    pub type Layer;
    #[wasm_bindgen(method, js_name = addTo)]
    fn add_to(this: &Layer, map: &LeafletMap) -> Layer;
    #[wasm_bindgen(method, js_name = remove)]
    fn remove_layer(this: &Layer);

    #[wasm_bindgen(js_namespace = L, js_name = tileLayer)]
    fn tile_layer(url: &str, options: &JsValue) -> Layer;
    #[wasm_bindgen(js_namespace = L, js_name = geoJSON)]
    fn geo_json(data: &JsValue, options: &JsValue) -> Layer;

    #[wasm_bindgen(extends = Layer)]
    pub type Marker;
    #[wasm_bindgen(js_namespace = L, js_name = marker)]
    fn marker(center: &Array, options: &JsValue) -> Marker;
    #[wasm_bindgen(method, js_name = setLatLng)]
    fn set_lat_lng(this: &Marker, center: &Array) -> Marker;
    #[wasm_bindgen(js_namespace = L, js_name = divIcon)]
    fn div_icon(options: &JsValue) -> JsValue;

    #[wasm_bindgen(extends = Layer)]
    pub type Circle;
    #[wasm_bindgen(js_namespace = L, js_name = circle)]
    fn circle(center: &Array, options: &JsValue) -> Circle;
    #[wasm_bindgen(method, js_name = setLatLng)]
    fn set_circle_lat_lng(this: &Circle, center: &Array) -> Circle;
    #[wasm_bindgen(method, js_name = setRadius)]
    fn set_radius(this: &Circle, radius: f64) -> Circle;
    #[wasm_bindgen(method, js_name = setStyle)]
    fn set_style(this: &Circle, style: &JsValue) -> Circle;

    #[wasm_bindgen(js_namespace = topojson, js_name = feature)]
    fn topojson_feature(topology: &JsValue, object: &JsValue) -> JsValue;
}

/// Whether the Leaflet script loaded.
pub fn is_available() -> bool {
    Reflect::get(&js_sys::global(), &"L".into()).is_ok_and(|l| l.is_object())
}

fn options(entries: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in entries {
        let _ = Reflect::set(&object, &(*key).into(), value);
    }
    object.into()
}

fn lat_lng(lat: f64, lon: f64) -> Array {
    Array::of2(&lat.into(), &lon.into())
}

struct Pin {
    marker: Marker,
    circle: Circle,
    element: HtmlElement,
}

/// The map on the page and its pins.
pub struct WorldMap {
    map: LeafletMap,
    pins: HashMap<UserId, Pin>,
}

impl WorldMap {
    pub fn new(container: &HtmlElement) -> Self {
        let map = new_map(
            container,
            &options(&[
                ("worldCopyJump", true.into()),
                ("minZoom", 2.into()),
                ("zoomSnap", 0.5.into()),
            ]),
        );
        map.set_view(&lat_lng(30.0, 0.0), 2.0);
        Self {
            map,
            pins: HashMap::new(),
        }
    }

    /// Draws the background: tiles, or the bundled world outline.
    pub fn set_background(&self, tiles: &Tiles, world: Option<&JsValue>) {
        match (tiles, world) {
            (Tiles::Url { url, attribution }, _) => {
                tile_layer(
                    url,
                    &options(&[
                        ("attribution", attribution.as_str().into()),
                        ("maxZoom", 19.into()),
                    ]),
                )
                .add_to(&self.map);
            }
            (Tiles::None(_), Some(topology)) => {
                let countries = Reflect::get(topology, &"objects".into())
                    .and_then(|objects| Reflect::get(&objects, &"countries".into()))
                    .unwrap_or(JsValue::UNDEFINED);
                let features = topojson_feature(topology, &countries);
                let style = options(&[
                    ("color", "#8a9bb0".into()),
                    ("weight", 1.into()),
                    ("fillColor", "#e6ebe0".into()),
                    ("fillOpacity", 1.into()),
                ]);
                geo_json(
                    &features,
                    &options(&[
                        ("style", style),
                        ("attribution", "Natural Earth".into()),
                        ("interactive", false.into()),
                    ]),
                )
                .add_to(&self.map);
            }
            (Tiles::None(_), None) => {}
        }
    }

    /// Adds or moves a sharer's pin; `age` is shown in its tooltip.
    pub fn upsert(&mut self, shared: &SharedLocation, own: bool, staleness: f64, age: &str) {
        let center = lat_lng(shared.location.lat, shared.location.lon);
        let pin = self
            .pins
            .entry(shared.member.user.clone())
            .or_insert_with(|| {
                let element = marker_element(shared);
                let icon = div_icon(&options(&[
                    ("html", element.clone().into()),
                    ("className", "person-pin".into()),
                    ("iconSize", Array::of2(&36.into(), &36.into()).into()),
                    ("iconAnchor", Array::of2(&18.into(), &18.into()).into()),
                ]));
                let marker = marker(
                    &center,
                    &options(&[
                        ("icon", icon),
                        ("title", shared.member.name.as_str().into()),
                        ("keyboard", false.into()),
                    ]),
                );
                marker.add_to(&self.map);
                let circle = circle(
                    &center,
                    &options(&[
                        ("radius", shared.location.accuracy.into()),
                        ("color", shared.member.color.as_str().into()),
                        ("weight", 1.into()),
                        ("fillOpacity", 0.12.into()),
                        ("interactive", false.into()),
                    ]),
                );
                circle.add_to(&self.map);
                Pin {
                    marker,
                    circle,
                    element,
                }
            });
        pin.marker.set_lat_lng(&center);
        pin.circle.set_circle_lat_lng(&center);
        pin.circle.set_radius(shared.location.accuracy);
        let opacity = 1.0 - 0.7 * staleness;
        pin.circle
            .set_style(&options(&[("opacity", (opacity * 0.8).into())]));
        describe(&pin.element, shared, own, staleness, age);
    }

    pub fn remove(&mut self, user: &UserId) {
        if let Some(pin) = self.pins.remove(user) {
            pin.marker.remove_layer();
            pin.circle.remove_layer();
        }
    }

    /// Pins no longer in `keep` go.
    pub fn retain(&mut self, keep: &dyn Fn(&UserId) -> bool) {
        let gone: Vec<UserId> = self
            .pins
            .keys()
            .filter(|user| !keep(user))
            .cloned()
            .collect();
        for user in gone {
            self.remove(&user);
        }
    }

    pub fn center_on(&self, shared: &SharedLocation, zoom_in: bool) {
        let center = lat_lng(shared.location.lat, shared.location.lon);
        if zoom_in {
            self.map.set_view(&center, self.map.get_zoom().max(15.0));
        } else {
            self.map.pan_to(&center);
        }
    }

    pub fn fit(&self, all: &[SharedLocation]) {
        match all {
            [] => {}
            [one] => self.center_on(one, true),
            many => {
                let bounds = Array::new();
                for shared in many {
                    bounds.push(&lat_lng(shared.location.lat, shared.location.lon));
                }
                self.map.fit_bounds(
                    &bounds,
                    &options(&[
                        ("padding", Array::of2(&40.into(), &40.into()).into()),
                        ("maxZoom", 16.into()),
                    ]),
                );
            }
        }
    }
}

impl Drop for WorldMap {
    fn drop(&mut self) {
        self.map.remove_map();
    }
}

/// The pin: a coloured disc with initials. Built as elements (never HTML
/// text), so a name is always shown as text.
fn marker_element(shared: &SharedLocation) -> HtmlElement {
    let document = leptos::prelude::document();
    let element: HtmlElement = document
        .create_element("div")
        .expect("create div")
        .unchecked_into();
    element.set_class_name("person-marker");
    let _ = element
        .style()
        .set_property("background-color", &shared.member.color);
    element.set_text_content(Some(&initials(&shared.member.name)));
    element
}

/// Keeps the pin's data attributes and classes in step with what it shows.
fn describe(element: &HtmlElement, shared: &SharedLocation, own: bool, staleness: f64, age: &str) {
    let set = |name: &str, value: &str| {
        let _ = element.set_attribute(name, value);
    };
    set("data-user", &shared.member.user.0);
    set("data-name", &shared.member.name);
    set("data-lat", &shared.location.lat.to_string());
    set("data-lon", &shared.location.lon.to_string());
    set("data-accuracy", &shared.location.accuracy.to_string());
    set("data-approximate", &shared.approximate.to_string());
    set("data-own", &own.to_string());
    set("data-stale", &(staleness > 0.0).to_string());
    set("aria-label", &format!("{} on the map", shared.member.name));
    let you = if own { " (you)" } else { "" };
    set(
        "title",
        &format!("{}{you} · updated {age}", shared.member.name),
    );
    let _ = element
        .style()
        .set_property("opacity", &format!("{:.2}", 1.0 - 0.7 * staleness));
    let class = if own {
        "person-marker own"
    } else {
        "person-marker"
    };
    element.set_class_name(class);
}
