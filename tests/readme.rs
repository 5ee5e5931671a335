//! Every Rust snippet of the README is compiled: `src/readme.rs` holds each one verbatim as
//! a doctest, and this test fails when a README snippet is not found there word for word.

fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap().join("\n")),
            (Some(b), l) => b.push(l),
            (None, _) => {}
        }
    }
    blocks
}

/// The doctest blocks of `src/readme.rs`, without the `/// ` prefix and the hidden lines.
fn compiled_blocks(source: &str) -> Vec<String> {
    let doc: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("///"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    rust_blocks(&doc.join("\n"))
        .into_iter()
        .map(|b| {
            b.lines()
                .filter(|l| !(l.starts_with("# ") || *l == "#"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn every_readme_snippet_is_a_compiled_doctest() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let compiled =
        compiled_blocks(&std::fs::read_to_string(format!("{root}/src/readme.rs")).unwrap());
    let snippets = rust_blocks(&readme);
    assert!(snippets.len() >= 8, "the README has its snippets");
    for (i, snippet) in snippets.iter().enumerate() {
        assert!(
            compiled.iter().any(|c| c == snippet),
            "README snippet {} is not in src/readme.rs verbatim; copy it there (with the hidden \
             lines it needs) so that it is compiled:\n{snippet}",
            i + 1
        );
    }
    assert_eq!(
        compiled.len(),
        snippets.len(),
        "src/readme.rs holds a snippet the README no longer has"
    );
}
