//! A small RFC 4180 CSV reader: quoted fields, doubled quotes, CRLF or LF line ends,
//! line breaks inside quotes. Each record comes with the line it starts on.

/// A record's fields with the 1-based line it starts on.
pub(super) type Record = (usize, Vec<String>);

/// The records of `text` (the first is the header), each with its 1-based start line.
/// The error is `(line, message)`.
pub(super) fn parse(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut records = Vec::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut field = String::new();
    let mut fields: Vec<String> = Vec::new();
    let mut in_quotes = false;
    let mut field_started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    match chars.peek() {
                        None | Some(',') | Some('\n') | Some('\r') => {}
                        Some(other) => {
                            return Err((
                                line,
                                format!("unexpected '{other}' after a closing quote"),
                            ));
                        }
                    }
                }
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if !field_started => {
                in_quotes = true;
                field_started = true;
            }
            '"' => return Err((line, "a quote inside an unquoted field".to_owned())),
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start_line = line;
            }
            other => {
                field.push(other);
                field_started = true;
            }
        }
    }
    if in_quotes {
        return Err((start_line, "a quoted field is never closed".to_owned()));
    }
    if field_started || !fields.is_empty() || !field.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_multiline_fields() {
        let text = "id,text\r\n1,\"a, \"\"b\"\"\"\n2,\"x\ny\"\n\n3,plain";
        let records = parse(text).unwrap_or_default();
        assert_eq!(
            records,
            vec![
                (1, vec!["id".to_owned(), "text".to_owned()]),
                (2, vec!["1".to_owned(), "a, \"b\"".to_owned()]),
                (3, vec!["2".to_owned(), "x\ny".to_owned()]),
                (6, vec!["3".to_owned(), "plain".to_owned()]),
            ]
        );
        assert_eq!(
            parse("a\n\"open").map(|_| ()),
            Err((2, "a quoted field is never closed".to_owned()))
        );
        assert!(parse("a\nx\"y").is_err());
    }
}
