//! How long browsers may keep each file of the web app. trunk puts a hash
//! of the content into the names of what it builds, so those never change
//! and are kept for a year; `index.html` names them and is always
//! revalidated, so a new build is picked up on the next load.

/// Files whose name carries their content's hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Vendored libraries (`vendor/…`, fixed names): kept an hour, then
/// revalidated (a 304 when unchanged).
pub const VENDOR: &str = "public, max-age=3600, must-revalidate";

/// Everything else, `index.html` and the app's routes first: revalidated on
/// every use.
pub const ALWAYS_REVALIDATE: &str = "no-cache";

/// The `Cache-Control` for the file at `path` (relative to the app's root,
/// with or without a leading slash).
pub fn cache_control(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    if path.starts_with("vendor/") {
        VENDOR
    } else if is_hashed(path) {
        IMMUTABLE
    } else {
        ALWAYS_REVALIDATE
    }
}

/// Whether trunk fingerprinted the file: its name (before its extension,
/// less wasm-bindgen's `_bg`), or a directory it is in (wasm-bindgen's
/// `snippets/<crate>-<hash>/`), ends in `-` and 16 hex digits.
fn is_hashed(path: &str) -> bool {
    let mut segments = path.split('/');
    let Some(file) = segments.next_back() else {
        return false;
    };
    // The app's routes have no extension, whatever their last segment.
    let Some((stem, _)) = file.rsplit_once('.') else {
        return false;
    };
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    ends_with_hash(stem) || segments.any(ends_with_hash)
}

fn ends_with_hash(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(prefix, hash)| {
        !prefix.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_immutable_vendor_files_revalidate_hourly_the_rest_always() {
        for path in [
            "/rookery-frontend-dfc671aec14dcb07.js",
            "rookery-frontend-dfc671aec14dcb07_bg.wasm",
            "/style-ba970530cf754a24.css",
            "/favicon-1908102d566c7ae9.svg",
            "/snippets/rookery-frontend-0123456789abcdef/inline0.js",
        ] {
            assert_eq!(cache_control(path), IMMUTABLE, "{path}");
        }
        for path in [
            "/vendor/leaflet/leaflet.js",
            "/vendor/world-atlas/countries-110m.json",
        ] {
            assert_eq!(cache_control(path), VENDOR, "{path}");
        }
        for path in [
            "/",
            "/index.html",
            "/chat/lobby",
            "/map/x",
            "/chat/room-0123456789abcdef",
            "/app.js",
            "/style-ba970530.css",
            "/-dfc671aec14dcb07.js",
            "/style-ba970530cf754a2g.css",
        ] {
            assert_eq!(cache_control(path), ALWAYS_REVALIDATE, "{path}");
        }
    }
}
