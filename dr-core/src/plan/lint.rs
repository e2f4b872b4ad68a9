//! Checks on a plan's text before and after the parser runs: emptiness and nesting depth
//! (one linear pass, so the parser never sees pathological input), and, when the parser
//! fails, a better account of the usual slips than the parser's own (a tab in the
//! indentation, an over-indented key, an unquoted TOML duration, a JSON trailing comma).

use super::{Format, MAX_DEPTH};

/// A fault at a place in the text.
#[derive(Debug)]
pub(super) struct Fault {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) field: Option<String>,
    pub(super) message: String,
    /// Whether the parser's field still applies (false when the parser got lost).
    pub(super) keep_field: bool,
}

/// Whether the text holds nothing but blank lines, comments and document markers.
pub(super) fn is_empty(text: &str, format: Format) -> bool {
    text.lines().all(|l| {
        let t = l.trim_start_matches('\u{feff}').trim();
        t.is_empty()
            || (format != Format::Json && t.starts_with('#'))
            || (format == Format::Yaml && (t == "---" || t == "..."))
    })
}

/// The first place where lists and maps nest deeper than [`MAX_DEPTH`], in one pass.
pub(super) fn too_deep(text: &str, format: Format) -> Option<Fault> {
    match format {
        Format::Json => bracket_depth(text, false),
        Format::Toml => bracket_depth(text, true),
        Format::Yaml => yaml_depth(text),
    }
}

fn deep(line: usize, column: usize, depth: usize) -> Fault {
    Fault {
        line,
        column,
        field: None,
        keep_field: false,
        message: format!(
            "lists and maps nest {depth} levels deep here, more than the limit of {MAX_DEPTH}; a plan needs about six"
        ),
    }
}

/// Depth of `[` / `{` outside strings (JSON; TOML also counts dotted keys).
fn bracket_depth(text: &str, toml: bool) -> Option<Fault> {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (ln, line) in text.lines().enumerate() {
        let mut key_dots = 0usize;
        let mut before_eq = toml && depth == 0 && in_str.is_none();
        for (col, c) in line.chars().enumerate() {
            if let Some(q) = in_str {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    in_str = None;
                }
                continue;
            }
            match c {
                '"' => in_str = Some('"'),
                '\'' if toml => in_str = Some('\''),
                '#' if toml => break,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(deep(ln + 1, col + 1, depth));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                '.' if before_eq => {
                    key_dots += 1;
                    if key_dots > MAX_DEPTH {
                        return Some(deep(ln + 1, col + 1, key_dots));
                    }
                }
                '=' => before_eq = false,
                _ => {}
            }
        }
        if toml {
            // TOML strings (other than multi-line ones, rare in plans) end with the line.
            in_str = None;
        }
    }
    None
}

/// Depth of a YAML text: the indentation levels open, plus `- ` / `? ` / `: ` indicators
/// opening a nested node on the same line, plus flow brackets; block scalars and quoted
/// strings are skipped.
fn yaml_depth(text: &str) -> Option<Fault> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut block_scalar: Option<usize> = None;
    for (ln, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        if let Some(parent) = block_scalar {
            if body.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if quote.is_none() && flow == 0 {
            if body.trim().is_empty() || body.starts_with('#') {
                continue;
            }
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
        }
        let mut inline = 0usize;
        let mut prev = ' ';
        let mut escaped = false;
        let chars: Vec<char> = body.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            if let Some(q) = quote {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    if q == '\'' && next == '\'' {
                        escaped = true; // '' inside a single-quoted scalar
                    } else {
                        quote = None;
                    }
                }
                prev = c;
                continue;
            }
            let token_start = prev == ' ' || matches!(prev, '[' | '{' | ',' | ':' | '-' | '?');
            match c {
                '#' if prev == ' ' || i == 0 => break,
                '"' | '\'' if token_start => quote = Some(c),
                '[' | '{' if token_start || flow > 0 => flow += 1,
                ']' | '}' if flow > 0 => flow -= 1,
                '-' | '?' | ':' if next == ' ' && flow == 0 && (token_start || c == ':') => {
                    inline += 1;
                }
                _ => {}
            }
            let depth = indents.len() + inline + flow;
            if depth > MAX_DEPTH {
                return Some(deep(ln + 1, indent + i + 1, depth));
            }
            prev = c;
        }
        if quote.is_none() && flow == 0 {
            let t = body.trim_end();
            let t = t.split(" #").next().unwrap_or(t).trim_end();
            if t.ends_with(['|', '>'])
                || t.ends_with("|-")
                || t.ends_with("|+")
                || t.ends_with(">-")
                || t.ends_with(">+")
            {
                block_scalar = Some(indent);
            }
        }
    }
    None
}

/// A clearer account of a parse failure at `err_line` (1-based), when the text shows one
/// of the usual slips at or before it.
pub(super) fn diagnose(
    text: &str,
    format: Format,
    err_line: Option<usize>,
    message: &str,
) -> Option<Fault> {
    match format {
        Format::Yaml => tab_indent(text, err_line).or_else(|| over_indented(text, err_line)),
        Format::Toml => toml_unquoted(text, err_line?),
        Format::Json => json_trailing_comma(text, err_line?, message),
    }
}

/// Whether a fault on line `at` may explain an error reported on line `err`.
fn explains(at: usize, err: Option<usize>) -> bool {
    err.is_none_or(|e| at <= e + 1)
}

fn tab_indent(text: &str, err_line: Option<usize>) -> Option<Fault> {
    for (ln, line) in text.lines().enumerate() {
        let lead = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
        if let Some(col) = lead.find('\t') {
            if !explains(ln + 1, err_line) {
                return None;
            }
            let key = line.trim().split(':').next().unwrap_or("").trim();
            return Some(Fault {
                line: ln + 1,
                column: col + 1,
                field: None,
                keep_field: false,
                message: format!(
                    "a tab in the indentation of `{}`: YAML indents with spaces only; replace the tab with spaces",
                    crate::redact::safe(key)
                ),
            });
        }
    }
    None
}

/// `key: value` with a plain scalar value: the key, when the line is one.
fn scalar_key(body: &str) -> Option<(&str, &str)> {
    let body = body.trim_start_matches("- ").trim_start();
    let (key, value) = body.split_once(": ")?;
    let key = key.trim();
    let value = value.trim();
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let plain = !value.is_empty()
        && !value.starts_with(['|', '>', '&', '*', '[', '{', '#', '"', '\'', '!']);
    (is_key && plain).then_some((key, value))
}

fn over_indented(text: &str, err_line: Option<usize>) -> Option<Fault> {
    let mut prev: Option<(usize, usize, &str)> = None; // (line, indent, key with plain value)
    for (ln, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        if body.trim().is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        if let Some((pl, pindent, pkey)) = prev {
            let key = body.split(':').next().unwrap_or("");
            let looks_like_key = body.contains(':')
                && !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if indent > pindent && looks_like_key && ln == pl + 1 {
                if !explains(ln + 1, err_line) {
                    return None;
                }
                return Some(Fault {
                    line: ln + 1,
                    column: indent + 1,
                    field: None,
                    keep_field: true,
                    message: format!(
                        "`{key}:` is indented more than `{pkey}:` on the line above, so YAML reads it as part of `{pkey}`'s value; indent `{key}:` exactly like `{pkey}:`"
                    ),
                });
            }
        }
        prev = scalar_key(body).map(|(k, _)| {
            let key_col = indent + (body.len() - body.trim_start_matches("- ").len());
            (ln, key_col, k)
        });
    }
    None
}

/// The `[section]` or `[[section]]` the TOML line `ln` (0-based) is in, as a field path.
fn toml_section(lines: &[&str], ln: usize) -> Option<String> {
    let header = lines[..ln]
        .iter()
        .rev()
        .find(|l| l.trim_start().starts_with('['))?;
    let h = header.trim();
    if let Some(name) = h.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
        let name = name.trim();
        let index = lines[..ln]
            .iter()
            .filter(|l| {
                l.trim()
                    .strip_prefix("[[")
                    .and_then(|h| h.strip_suffix("]]"))
                    .map(str::trim)
                    == Some(name)
            })
            .count()
            .saturating_sub(1);
        Some(format!("{name}[{index}]"))
    } else {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map(|n| n.trim().to_string())
    }
}

fn toml_unquoted(text: &str, err_line: usize) -> Option<Fault> {
    let lines: Vec<&str> = text.lines().collect();
    let ln = err_line.checked_sub(1)?;
    let line = lines.get(ln)?;
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let value = value.split(" #").next().unwrap_or(value).trim();
    let bare_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !bare_key || value.is_empty() || value.starts_with(['"', '\'', '[', '{']) {
        return None;
    }
    let is_literal = value == "true"
        || value == "false"
        || value.parse::<f64>().is_ok()
        || value.chars().all(|c| c.is_ascii_digit() || c == '_');
    if is_literal {
        return None;
    }
    let what = if value.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        "a duration"
    } else {
        "text"
    };
    let field = match toml_section(&lines, ln) {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    };
    let shown = crate::redact::safe(value);
    Some(Fault {
        line: err_line,
        column: line.find(value).map_or(1, |c| c + 1),
        field: Some(field),
        keep_field: false,
        message: format!(
            "`{key} = {shown}`: {what} in TOML is a quoted string; write `{key} = \"{shown}\"`"
        ),
    })
}

fn json_trailing_comma(text: &str, err_line: usize, message: &str) -> Option<Fault> {
    if !message.contains("trailing comma") {
        return None;
    }
    // The parser stops at the closing bracket; the comma is the last one before it.
    let offset: usize = text
        .split_inclusive('\n')
        .take(err_line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line = text[offset..].lines().next().unwrap_or("");
    let close = offset + line.find([']', '}']).unwrap_or(line.len());
    let comma = text[..close].rfind(',')?;
    let before = &text[..comma];
    let line = before.matches('\n').count() + 1;
    let column = comma - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some(Fault {
        line,
        column,
        field: None,
        keep_field: true,
        message:
            "trailing comma: JSON allows no `,` after the last item of a list or object; remove it"
                .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_shallow() {
        let text = "name: a\nservices:\n  - name: x\n    secret: { name: s, key: k }\n    depends_on: [a, b]\n";
        assert!(too_deep(text, Format::Yaml).is_none());
    }

    #[test]
    fn deep_flow_and_block_nesting_is_found() {
        let flow = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(too_deep(&flow, Format::Yaml).is_some());
        let block = format!("a:\n{}x", "- ".repeat(100));
        assert!(too_deep(&block, Format::Yaml).is_some());
        let json = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(too_deep(&json, Format::Json).is_some());
        let toml = format!("a = {}{}", "[".repeat(100), "]".repeat(100));
        assert!(too_deep(&toml, Format::Toml).is_some());
    }

    #[test]
    fn brackets_in_strings_and_block_scalars_do_not_count() {
        let text = format!(
            "a: \"{}\"\nb: |\n  {}\nc: '{}'\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(too_deep(&text, Format::Yaml).is_none(), "{text}");
    }
}
