//! Notifications for this user: what arrives on `notify:{user id}` (the HTTP
//! API publishes there), kept as a short list of toasts.

use rookery_common::Publication;
use serde_json::Value;

/// One toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub key: u64,
    pub title: String,
    pub body: Option<String>,
}

/// Toasts on screen, newest last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toasts {
    pub shown: Vec<Toast>,
    next_key: u64,
}

/// At most this many toasts show at once; older ones make room.
pub const MAX_TOASTS: usize = 5;

impl Toasts {
    /// Adds a toast for a publication; returns its key (for dismissing).
    pub fn push(&mut self, publication: &Publication) -> u64 {
        let (title, body) = describe(&publication.data);
        let key = self.next_key;
        self.next_key += 1;
        self.shown.push(Toast { key, title, body });
        if self.shown.len() > MAX_TOASTS {
            self.shown.remove(0);
        }
        key
    }

    pub fn dismiss(&mut self, key: u64) {
        self.shown.retain(|toast| toast.key != key);
    }
}

/// `{"title", "body"}`, `{"text"}`, a plain string, or the JSON itself.
fn describe(data: &Value) -> (String, Option<String>) {
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    match (text("title"), text("body"), text("text"), data.as_str()) {
        (Some(title), body, _, _) => (title, body),
        (None, Some(body), _, _) => (body, None),
        (None, None, Some(text), _) => (text, None),
        (None, None, None, Some(text)) => (text.to_owned(), None),
        _ => (data.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn publication(data: Value) -> Publication {
        Publication {
            position: None,
            data,
            sender: None,
            time: 0,
        }
    }

    #[test]
    fn toasts_read_common_shapes_and_stay_bounded() {
        let mut toasts = Toasts::default();
        toasts.push(&publication(
            json!({"title": "Build passed", "body": "main is green"}),
        ));
        toasts.push(&publication(json!({"text": "hello"})));
        toasts.push(&publication(json!("plain")));
        toasts.push(&publication(json!({"n": 1})));
        let titles: Vec<_> = toasts.shown.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["Build passed", "hello", "plain", "{\"n\":1}"]);
        assert_eq!(toasts.shown[0].body.as_deref(), Some("main is green"));
        for _ in 0..10 {
            toasts.push(&publication(json!("x")));
        }
        assert_eq!(toasts.shown.len(), MAX_TOASTS);
        let key = toasts.shown[0].key;
        toasts.dismiss(key);
        assert_eq!(toasts.shown.len(), MAX_TOASTS - 1);
    }
}
