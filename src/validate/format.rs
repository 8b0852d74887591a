//! Replacement fields of `str.format` strings (PEP 3101).

/// The first replacement field whose name reaches an attribute (`{0.__class__}`) or an item
/// (`{0[__globals__]}`), nested fields inside format specs included.
///
/// The scan is deliberately more suspicious than `str.format`: every unescaped `{` starts a
/// field, so a malformed string can only be flagged, never slip through.
pub fn walking_field(template: &str) -> Option<&str> {
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            if bytes.get(i + 1) == Some(&b'{') {
                i += 2;
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && !matches!(bytes[end], b'}' | b'!' | b':' | b'{') {
                end += 1;
            }
            let name = template.get(start..end).unwrap_or("");
            if name.contains(['.', '[']) {
                return Some(name);
            }
            i = start;
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::walking_field;

    #[test]
    fn fields() {
        assert_eq!(walking_field("{0.__class__}"), Some("0.__class__"));
        assert_eq!(walking_field("{x.y}"), Some("x.y"));
        assert_eq!(walking_field("{0[__globals__]}"), Some("0[__globals__]"));
        assert_eq!(walking_field("{0:{1.real}}"), Some("1.real"));
        assert_eq!(walking_field("{{{0.a}}}"), Some("0.a"));
        assert_eq!(walking_field("{{0.a}}"), None);
        assert_eq!(walking_field("{:.2f} {name!r:>10} {0}"), None);
    }
}
