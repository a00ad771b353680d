//! The Markdown preview. Notes are written by anyone who has the link, so
//! the preview must not run what they wrote: raw HTML is shown as text, and
//! links or images whose address is not http(s), mailto or relative lose
//! it (no `javascript:` or `data:` URLs). The HTML writer escapes the rest.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// `markdown` as HTML that is safe to put in the page.
pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    if is_safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("")
    }
}

/// Browsers ignore ASCII whitespace and control characters inside a
/// scheme ("java\tscript:"), so they are ignored here too before reading it.
fn is_safe_url(url: &str) -> bool {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect();
    let scheme_end = cleaned.find([':', '/', '?', '#']);
    match scheme_end {
        Some(end) if cleaned[end..].starts_with(':') => {
            let scheme = cleaned[..end].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
        // No scheme: a relative address or a fragment.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown() {
        let html = render("# Plan\n\n- **milk**\n- [site](https://example.com)\n");
        assert!(html.contains("<h1>Plan</h1>"), "{html}");
        assert!(html.contains("<strong>milk</strong>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com">site</a>"#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn script_urls_are_dropped() {
        for url in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:x",
            "data:text/html,x",
            "vbscript:x",
        ] {
            let html = render(&format!("[x](<{url}>) ![y](<{url}>)"));
            assert!(
                !html.to_ascii_lowercase().contains("script:"),
                "{url}: {html}"
            );
            assert!(!html.contains("data:"), "{url}: {html}");
        }
        assert!(render("[a](/notes/x) [b](#top) [c](mailto:a@b.c)").contains(r#"href="/notes/x""#));
    }

    #[test]
    fn attributes_cannot_be_broken_out_of() {
        let html = render(r#"[x](https://e.com/"onmouseover="alert(1))"#);
        assert!(
            !html.contains(r#"" onmouseover"#) && !html.contains(r#""onmouseover=""#),
            "{html}"
        );
    }
}
