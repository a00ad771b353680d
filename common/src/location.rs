//! Positions as the live map shares them, and the geometry both sides need:
//! validity, distance, and the coarse grid of approximate sharing.

use serde::{Deserialize, Serialize};

use crate::user::UserInfo;

/// One reported position (the Geolocation API's fields).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Degrees, −90 to 90.
    pub lat: f64,
    /// Degrees, −180 to 180.
    pub lon: f64,
    /// Radius of the 95 % circle, in metres.
    pub accuracy: f64,
    /// When the device measured it, in milliseconds since the Unix epoch.
    pub time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
}

/// A sharer's current position, as everyone in the room receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLocation {
    pub member: UserInfo,
    pub location: Location,
    /// Rounded to about a kilometre by the sharer's choice; the exact
    /// position never left the server.
    pub approximate: bool,
}

/// Why a sharer's marker went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// They stopped sharing.
    Stopped,
    /// No update within the namespace's TTL (a dropped connection, say).
    Expired,
}

/// A location that can go on a map: finite, in range, and not the (0, 0)
/// "null island" that broken devices report.
pub fn is_valid(location: &Location) -> bool {
    let finite = [location.lat, location.lon, location.accuracy]
        .iter()
        .chain(location.speed.iter())
        .chain(location.heading.iter())
        .all(|value| value.is_finite());
    finite
        && (-90.0..=90.0).contains(&location.lat)
        && (-180.0..=180.0).contains(&location.lon)
        && location.accuracy >= 0.0
        && !(location.lat == 0.0 && location.lon == 0.0)
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(a: &Location, b: &Location) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_000.0;
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.lon - a.lon).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The grid of approximate sharing: 0.01° (about 1.1 km north–south).
pub const APPROXIMATE_GRID_DEG: f64 = 0.01;
/// Accuracy reported for an approximate position, in metres.
pub const APPROXIMATE_ACCURACY_M: f64 = 1_000.0;

/// Snaps a location to the approximate grid and drops what would narrow it
/// down (speed, heading). Deterministic, so repeated updates from one spot
/// land on the same point and reveal nothing by averaging.
pub fn approximate(location: &Location) -> Location {
    let snap = |degrees: f64| (degrees / APPROXIMATE_GRID_DEG).round() * APPROXIMATE_GRID_DEG;
    Location {
        lat: snap(location.lat).clamp(-90.0, 90.0),
        lon: snap(location.lon).clamp(-180.0, 180.0),
        accuracy: location.accuracy.max(APPROXIMATE_ACCURACY_M),
        // A coarse time too: to the minute.
        time: location.time - location.time % 60_000,
        speed: None,
        heading: None,
    }
}

/// Initials for a marker: the first letter of the first two words.
pub fn initials(name: &str) -> String {
    let initials: String = name
        .split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if initials.is_empty() {
        "?".into()
    } else {
        initials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Location {
        Location {
            lat,
            lon,
            accuracy: 10.0,
            time: 1_700_000_123_456,
            speed: Some(1.2),
            heading: Some(90.0),
        }
    }

    #[test]
    fn validity() {
        assert!(is_valid(&at(48.85, 2.35)));
        assert!(!is_valid(&at(91.0, 0.0)));
        assert!(!is_valid(&at(0.0, 181.0)));
        assert!(!is_valid(&at(0.0, 0.0)));
        assert!(!is_valid(&Location {
            accuracy: -1.0,
            ..at(1.0, 1.0)
        }));
        assert!(!is_valid(&Location {
            speed: Some(f64::NAN),
            ..at(1.0, 1.0)
        }));
    }

    #[test]
    fn distances_are_in_metres() {
        let paris = at(48.8566, 2.3522);
        let london = at(51.5074, -0.1278);
        let d = distance_m(&paris, &london);
        assert!((340_000.0..345_000.0).contains(&d), "{d}");
        let step = at(48.8566 + 0.0001, 2.3522);
        assert!((10.0..12.0).contains(&distance_m(&paris, &step)));
    }

    #[test]
    fn approximate_positions_hide_the_exact_one() {
        let exact = at(48.856_613, 2.352_222);
        let coarse = approximate(&exact);
        assert!((coarse.lat - 48.86).abs() < 1e-9 && (coarse.lon - 2.35).abs() < 1e-9);
        assert_eq!(coarse.accuracy, APPROXIMATE_ACCURACY_M);
        assert_eq!((coarse.speed, coarse.heading), (None, None));
        assert_eq!(coarse.time % 60_000, 0);
        // Nearby points land on the same grid point.
        assert_eq!(
            approximate(&at(48.8571, 2.3519)),
            approximate(&at(48.8568, 2.3524))
        );
        assert!(distance_m(&exact, &coarse) < 1_000.0);
    }

    #[test]
    fn initials_from_names() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("bob"), "B");
        assert_eq!(initials("  "), "?");
        assert_eq!(initials("élodie de la cruz"), "ÉD");
    }
}
