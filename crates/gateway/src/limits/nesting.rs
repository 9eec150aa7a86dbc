//! How deeply a query's text nests brackets, found in one pass over its characters before
//! anything parses it: the parser recurses once per level of `{`, `[` and `(`, so an
//! unchecked 6 KB request of nested lists overflows a worker's stack.

/// The deepest nesting of `{}`, `[]` and `()` in `query`, outside strings and comments,
/// or the first position (in bytes) where it passes `limit`.
pub fn check(query: &str, limit: usize) -> Result<usize, TooDeep> {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i = block_string_end(bytes, i + 3);
                continue;
            }
            b'"' => {
                i = string_end(bytes, i + 1);
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { at: i });
                }
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(deepest)
}

/// Where a query's text went past the nesting limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub at: usize,
}

/// The index after the closing quote of a string whose content starts at `i`, or the end
/// of the text (the parser reports an unterminated string).
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A string ends at a line break; the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the closing `"""` of a block string whose content starts at `i`.
fn block_string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_of_bracket() {
        assert_eq!(check("{ a }", 10), Ok(1));
        assert_eq!(check("{ a(x: [{y: 1}]) { b } }", 10), Ok(4));
        assert_eq!(check("", 10), Ok(0));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let query = "{ a(s: \"{{{[[[\\\"(((\") # {{{{{{\n b(t: \"\"\"[[[[ \\\"\"\" {{{{\"\"\") }";
        assert_eq!(check(query, 3), Ok(2));
    }

    #[test]
    fn refuses_past_the_limit_at_the_bracket_that_passes_it() {
        let query = format!(
            "{{ products(first: {}{}) {{ id }} }}",
            "[".repeat(3000),
            "]".repeat(3000)
        );
        let err = check(&query, 64).unwrap_err();
        assert_eq!(&query[err.at..=err.at], "[");
        assert!(check("{{{{", 3).is_err());
    }

    #[test]
    fn unterminated_strings_end_the_scan_without_panicking() {
        assert_eq!(check("{ a(s: \"abc", 5), Ok(2));
        assert_eq!(check("{ a(s: \"\"\"abc", 5), Ok(2));
        assert_eq!(check("{ a(s: \"ab\\", 5), Ok(2));
        assert_eq!(check("\"\"\"\\\"\"", 5), Ok(0));
    }
}
