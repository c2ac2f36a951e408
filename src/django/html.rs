//! `django.utils.html`: `escape` (`html.escape(s, quote=True)` with `'` as `&#x27;`) and
//! `json_script`.

use std::convert::Infallible;
use std::io::Write;

/// The entity Django writes for `byte`, if it escapes it. Tera's own escaper differs (`&#39;`,
/// `&#x2F;`), so the templates use [`write_escaped`].
fn entity(byte: u8) -> Option<&'static str> {
    Some(match byte {
        b'&' => "&amp;",
        b'<' => "&lt;",
        b'>' => "&gt;",
        b'"' => "&quot;",
        b'\'' => "&#x27;",
        _ => return None,
    })
}

/// Hands `input` to `emit` in pieces: runs of text kept as they are, and the entities.
fn escape_pieces<E>(input: &str, mut emit: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    let mut start = 0;
    for (i, byte) in input.bytes().enumerate() {
        // Only ASCII bytes are replaced, so every slice ends on a character boundary.
        let Some(entity) = entity(byte) else {
            continue;
        };
        emit(&input[start..i])?;
        emit(entity)?;
        start = i + 1;
    }
    emit(&input[start..])
}

/// `& < > " '` → `&amp; &lt; &gt; &quot; &#x27;`, byte-for-byte as Django escapes.
pub fn escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let _ = escape_pieces::<Infallible>(input, |piece| {
        out.push_str(piece);
        Ok(())
    });
    out
}

/// [`escape`] written to `out`: the signature of Tera's escape function (autoescape).
pub fn write_escaped(input: &str, out: &mut dyn Write) -> std::io::Result<()> {
    escape_pieces(input, |piece| out.write_all(piece.as_bytes()))
}

/// `django.utils.html.json_script` around `json`, the `json.dumps(value,
/// cls=DjangoJSONEncoder)` text (default separators, `ensure_ascii=True`): `<`, `>`, `&` as
/// `\u003C`, `\u003E`, `\u0026`, in a `<script type="application/json">` whose id is escaped.
pub fn json_script(json: &str, id: Option<&str>) -> String {
    let json = json
        .replace('<', "\\u003C")
        .replace('>', "\\u003E")
        .replace('&', "\\u0026");
    match id {
        Some(id) if !id.is_empty() => format!(
            r#"<script id="{}" type="application/json">{json}</script>"#,
            escape(id)
        ),
        _ => format!(r#"<script type="application/json">{json}</script>"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = r#"<a href="x">Tom & 'Jerry' / é</a>"#;
    const DJANGO: &str = "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27; / é&lt;/a&gt;";

    #[test]
    fn escapes_the_five_characters_django_does() {
        assert_eq!(escape(INPUT), DJANGO);
    }

    #[test]
    fn the_writer_matches_django_byte_for_byte() {
        let mut out = Vec::new();
        write_escaped(INPUT, &mut out).expect("write to Vec");
        assert_eq!(String::from_utf8(out).expect("utf-8"), DJANGO);
        assert_eq!(escape(""), "");
        assert_eq!(escape("&&"), "&amp;&amp;");
        assert_eq!(escape("é'"), "é&#x27;");
    }
}
