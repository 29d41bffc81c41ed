//! Every example in the README runs as written after the quick start, with
//! the output it shows: see `common::examples` for the convention.

mod common;

use std::path::Path;

use common::examples::{self, Step, matches};
use regex::Regex;

fn readme() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

#[test]
fn readme_examples_run_as_written() {
    examples::run_document(&readme());
}

#[test]
fn readme_commands_are_all_in_examples() {
    // A `sh` block with containr commands would be an example nobody runs.
    let text = std::fs::read_to_string(readme()).unwrap();
    let mut info = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("```") {
            info = if info.is_some() {
                None
            } else {
                Some(rest.trim().to_string())
            };
            continue;
        }
        if let Some(info) = &info
            && ["sh", "bash", "shell"].contains(&info.as_str())
        {
            assert!(
                !line.contains("containr "),
                "README.md:{}: a containr command in a `{info}` block: make it a `console` example",
                i + 1
            );
        }
    }
}

#[test]
fn blocks_steps_and_varying_parts_are_parsed() {
    let doc = "text\n\n<!-- example vary=\"[0-9a-f]{12}\" vary=\"\\d+ ms\" -->\n```console\n$ sudo containr ps -q\nabc\n$ true\n```\n\n```sh\n$ not run\n```\n```console\n$ x &\n```\n";
    let blocks = examples::parse(doc);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].line, 4);
    assert_eq!(blocks[0].vary, ["[0-9a-f]{12}", "\\d+ ms"]);
    let cmds: Vec<&str> = blocks[0]
        .steps
        .iter()
        .map(|s: &Step| s.command.as_str())
        .collect();
    assert_eq!(cmds, ["sudo containr ps -q", "true"]);
    assert_eq!(blocks[0].steps[0].expected, ["abc"]);
    assert!(blocks[0].steps[1].expected.is_empty());
    assert!(blocks[1].vary.is_empty());
}

#[test]
fn output_matches_with_ellipses_spaces_and_varying_parts() {
    let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let id = [Regex::new("[0-9a-f]{12}").unwrap()];
    assert!(matches(&s(&["a   b"]), &s(&["a b"]), &[]));
    assert!(!matches(&s(&["a b"]), &s(&["a c"]), &[]));
    assert!(matches(
        &s(&["9c1e0d4b7a21 x"]),
        &s(&["128b7bd59c32    x"]),
        &id
    ));
    assert!(!matches(
        &s(&["9c1e0d4b7a21 x"]),
        &s(&["128b7bd59c32 y"]),
        &id
    ));
    assert!(matches(
        &s(&["first", "...", "last"]),
        &s(&["first", "1", "2", "last"]),
        &[]
    ));
    assert!(matches(
        &s(&["first", "...", "last"]),
        &s(&["first", "last"]),
        &[]
    ));
    assert!(!matches(
        &s(&["first", "...", "last"]),
        &s(&["first", "2"]),
        &[]
    ));
    assert!(!matches(&s(&["one"]), &s(&["one", "two"]), &[]));
    assert!(matches(&s(&[]), &s(&[]), &[]));
}
