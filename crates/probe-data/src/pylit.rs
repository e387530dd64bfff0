//! Just enough of Python literal syntax for OpinionQA's `info.csv` (lists of quoted strings or
//! numbers, written by pandas with `str(list)`).

/// Parses `['a', "b's", 'c']` or `[1.0, 2.0]` into strings.
pub fn parse_list(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '\'' || c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next()? {
                    '\\' => s.push(chars.next()?),
                    ch if ch == c => break,
                    ch => s.push(ch),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while chars.peek().is_some_and(|ch| *ch != ',') {
                s.push(chars.next()?);
            }
            out.push(s.trim().to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pandas_lists() {
        assert_eq!(
            parse_list("['a', \"Associate's degree\", 'c']").unwrap(),
            vec!["a", "Associate's degree", "c"]
        );
        assert_eq!(
            parse_list("[1.0, 2.0, 3.0]").unwrap(),
            vec!["1.0", "2.0", "3.0"]
        );
        assert_eq!(parse_list("[]").unwrap(), Vec::<String>::new());
        assert!(parse_list("not a list").is_none());
    }
}
