//! Text fields report a whole new value; Yjs wants the edit. Since a field
//! changes by one contiguous splice per input event (typing, deleting,
//! pasting over a selection), the common prefix and suffix find it.
//! Offsets are UTF-16 code units: what `selectionStart` and Yjs count.

/// One contiguous edit, in UTF-16 code units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub start: u32,
    pub delete: u32,
    pub insert: String,
}

/// The edit that turns `old` into `new`, or `None` when they are equal.
/// Prefix and suffix are matched by whole characters, so a splice never
/// cuts a surrogate pair.
pub fn splice(old: &str, new: &str) -> Option<Splice> {
    if old == new {
        return None;
    }
    let prefix: usize = old
        .chars()
        .zip(new.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let (old_rest, new_rest) = (&old[prefix..], &new[prefix..]);
    let suffix: usize = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    // When the edit is ambiguous ("aa" -> "aaa"), the prefix wins and the
    // suffix must not overlap it.
    let suffix = suffix.min(old_rest.len()).min(new_rest.len());
    let deleted = &old_rest[..old_rest.len() - suffix];
    let inserted = &new_rest[..new_rest.len() - suffix];
    Some(Splice {
        start: utf16_len(&old[..prefix]),
        delete: utf16_len(deleted),
        insert: inserted.to_owned(),
    })
}

pub fn utf16_len(text: &str) -> u32 {
    text.encode_utf16().count() as u32
}

/// The byte index in `text` of UTF-16 offset `offset`, clamped to the end
/// and rounded down to a character boundary.
pub fn byte_index(text: &str, offset: u32) -> usize {
    let mut units = 0u32;
    for (index, ch) in text.char_indices() {
        let next = units + ch.len_utf16() as u32;
        if next > offset {
            return index;
        }
        units = next;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(old: &str, splice: &Splice) -> String {
        let start = byte_index(old, splice.start);
        let end = byte_index(old, splice.start + splice.delete);
        format!("{}{}{}", &old[..start], splice.insert, &old[end..])
    }

    #[test]
    fn finds_typing_deleting_and_replacing() {
        assert_eq!(splice("abc", "abc"), None);
        let typed = splice("hello world", "hello, world").unwrap();
        assert_eq!(
            (typed.start, typed.delete, typed.insert.as_str()),
            (5, 0, ",")
        );
        let deleted = splice("hello world", "hello").unwrap();
        assert_eq!(
            (deleted.start, deleted.delete, deleted.insert.as_str()),
            (5, 6, "")
        );
        let replaced = splice("one two three", "one 2 three").unwrap();
        assert_eq!(
            (replaced.start, replaced.delete, replaced.insert.as_str()),
            (4, 3, "2")
        );
    }

    #[test]
    fn repeated_characters_do_not_overlap() {
        let edit = splice("aa", "aaa").unwrap();
        assert_eq!(apply("aa", &edit), "aaa");
        let edit = splice("aaa", "a").unwrap();
        assert_eq!(apply("aaa", &edit), "a");
    }

    #[test]
    fn offsets_count_utf16_like_browsers() {
        // 😀 is two UTF-16 units, é one.
        let edit = splice("😀é", "😀xé").unwrap();
        assert_eq!(edit.start, 2);
        let edit = splice("a😀b", "ab").unwrap();
        assert_eq!((edit.start, edit.delete), (1, 2));
        assert_eq!(byte_index("a😀b", 3), 5);
        // An offset inside a surrogate pair rounds down.
        assert_eq!(byte_index("a😀b", 2), 1);
        assert_eq!(byte_index("ab", 99), 2);
    }

    #[test]
    fn any_pair_of_texts_round_trips() {
        let samples = ["", "a", "ab", "😀", "a😀", "naïve café", "aaaa", "\n\n"];
        for old in samples {
            for new in samples {
                if let Some(edit) = splice(old, new) {
                    assert_eq!(apply(old, &edit), new, "{old:?} -> {new:?}");
                }
            }
        }
    }
}
