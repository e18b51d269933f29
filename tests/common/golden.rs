//! Golden request/response files: `NN-name.http` with comment lines (`#`), the
//! request line, headers, a blank line, the body, a `---` line, the status, and
//! the expected body, in which `{*}` stands for any text without markup.
//! `{name}` placeholders are replaced by the test's values first.

use std::collections::BTreeMap;

/// One request and the answer expected for it.
#[derive(Debug)]
pub struct Fixture {
    pub name: String,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
    pub expected: String,
}

/// Reads `NN-name.http` files: comment lines (`#`), the request line, headers,
/// a blank line, the body, a `---` line, the status, and the expected body, in
/// which `{*}` stands for any text.
pub fn read(dir: &str, vars: &BTreeMap<&str, String>) -> Vec<Fixture> {
    pairs(dir, "http", vars)
        .into_iter()
        .map(|(name, request, response)| {
            let (head, body) = request.split_once("\n\n").unwrap_or((&request, ""));
            let mut head = head.lines();
            let (method, target) = head.next().unwrap().split_once(' ').unwrap();
            let headers = head
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap();
                    (k.trim().to_string(), v.trim().to_string())
                })
                .collect();
            let (status, expected) = response.split_once('\n').unwrap_or((&response, ""));
            Fixture {
                method: method.to_string(),
                target: target.to_string(),
                headers,
                body: body.to_string(),
                status: status.trim().parse().unwrap(),
                expected: expected.trim_end_matches('\n').to_string(),
                name,
            }
        })
        .collect()
}

/// The `*.<extension>` files of `dir` in name order, each with `{name}`
/// placeholders replaced and comment lines (`#`) dropped, split at its `---`
/// line: file name, request, answer.
pub fn pairs(
    dir: &str,
    extension: &str,
    vars: &BTreeMap<&str, String>,
) -> Vec<(String, String, String)> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let mut text = std::fs::read_to_string(path).unwrap();
            for (key, value) in vars {
                text = text.replace(&format!("{{{key}}}"), value);
            }
            let text: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n");
            let (request, response) = text.split_once("\n---\n").expect("a --- line");
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                request.to_string(),
                response.to_string(),
            )
        })
        .collect()
}

/// Whether `actual` is `expected` with each `{*}` standing for any text.
pub fn matches(expected: &str, actual: &str) -> bool {
    let mut pieces = expected.split("{*}");
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (i, piece) in pieces.iter().enumerate() {
        if i + 1 == pieces.len() {
            return rest.ends_with(piece) && !rest[..rest.len() - piece.len()].contains('<');
        }
        match rest.find(piece) {
            Some(at) if !rest[..at].contains('<') => rest = &rest[at + piece.len()..],
            _ => return false,
        }
    }
    rest.is_empty()
}
