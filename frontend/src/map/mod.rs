//! The live map's client side: state, throttling, the browser's
//! geolocation, and the Leaflet binding. Views are in `pages/map_room.rs`.

pub mod geolocation;
pub mod leaflet;
pub mod state;
pub mod throttle;
