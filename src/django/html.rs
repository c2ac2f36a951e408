//! `django.utils.html.escape` (`html.escape(s, quote=True)` with `'` as `&#x27;`).

/// `& < > " '` → `&amp; &lt; &gt; &quot; &#x27;`, byte-for-byte as Django escapes.
pub fn escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_the_five_characters_django_does() {
        assert_eq!(
            super::escape(r#"<a href="x">Tom & 'Jerry' / é</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27; / é&lt;/a&gt;"
        );
    }
}
