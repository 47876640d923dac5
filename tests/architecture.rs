//! The crate's layers, and a check that imports only point down. The order is written once,
//! here, bottom to top; a module may use (`crate::…`) the modules of the layers below its own,
//! never one beside or above it. `cargo test --test architecture -- --nocapture` prints the
//! module graph as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. Modules in one layer know nothing of each other.
const LAYERS: &[&[&str]] = &[
    // The error type every layer returns.
    &["error"],
    // Leaves: the statistics drift rests on; metrics, health, telemetry, shutdown.
    &["stats", "obs"],
    // Avro in and out, the schema registry.
    &["codec"],
    // Models: training, artifacts, the registry, the compiled forest.
    &["model"],
    // Kafka transport.
    &["kafka"],
    // Drift windows and their tests; labels joined to their predictions.
    &["drift", "labels"],
    // The consumer loop and the scorer.
    &["pipeline"],
    // Settings from the command line and the environment.
    &["config"],
    // The sidecar and the REST twin.
    &["http"],
    // One running instance.
    &["service"],
    // Beside the data path: generator, demo, benchmarks.
    &["tools"],
];

/// Upward imports not yet removed: each is to go, and none may be added.
const NOT_YET_REMOVED: &[(&str, &str)] = &[];

fn level(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The crate's modules `text` uses, outside comments and its `#[cfg(test)] mod tests`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = non_test(text);
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The top module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn owner(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The imports of `module` (from a file at `path`) that point up or sideways.
fn violations(path: &str, module: &str, text: &str) -> Vec<(String, String)> {
    let own = level(module).unwrap_or_else(|| panic!("{module} is in no layer: add it to LAYERS"));
    imports(text)
        .into_iter()
        .filter(|used| used != module)
        .filter(|used| level(used).is_some_and(|l| l >= own))
        .map(|used| (path.to_string(), used))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file of `src/` with its owner and text.
fn sources() -> Vec<(String, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(root.join("src")).ok()?.to_path_buf();
            let module = owner(&relative)?;
            let text = std::fs::read_to_string(&path).expect("a source file");
            let shown = Path::new("src").join(relative).display().to_string();
            Some((shown, module, text))
        })
        .collect()
}

/// Whether the file at `path` holds only tests or their helpers.
fn test_only(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.ends_with("/testing.rs") || path.contains("/tests/")
}

#[test]
fn imports_only_point_down() {
    let mut found = BTreeSet::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Test-only files (`tests.rs`, the `testing.rs` helpers of unit tests) are left out, like
    // a file's `mod tests`: they may set up with whatever they need.
    let code = sources()
        .into_iter()
        .filter(|(path, _, _)| !test_only(path));
    for (path, module, text) in code {
        found.extend(violations(&path, &module, &text));
        let used: Vec<String> = (imports(&text).into_iter())
            .filter(|u| *u != module && level(u).is_some())
            .collect();
        graph.entry(module).or_default().extend(used);
    }
    println!("the module graph (each module: the modules it uses), bottom to top:");
    for layer in LAYERS {
        for module in layer.iter() {
            let uses = graph.get(*module).cloned().unwrap_or_default();
            let uses: Vec<String> = uses.into_iter().collect();
            println!("  {module:<9} -> {}", uses.join(", "));
        }
    }
    let known: BTreeSet<(String, String)> = (NOT_YET_REMOVED.iter())
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    let added: Vec<_> = found.difference(&known).collect();
    let removed: Vec<_> = known.difference(&found).collect();
    assert!(
        added.is_empty(),
        "imports that point up or sideways (file, module used): {added:?}; the layers, bottom to top: {LAYERS:?}"
    );
    assert!(
        removed.is_empty(),
        "gone, so take them off NOT_YET_REMOVED: {removed:?}"
    );
}

#[test]
fn every_module_of_the_crate_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let modules: Vec<&str> = (lib.lines())
        .filter_map(|l| l.trim().strip_suffix(';')?.split("mod ").nth(1))
        .collect();
    assert!(modules.len() >= 10, "{modules:?}");
    for module in modules {
        assert!(
            level(module).is_some(),
            "{module} is in no layer: add it to LAYERS"
        );
    }
}

#[test]
fn the_check_catches_an_upward_and_a_sideways_import() {
    let upward = "use crate::kafka::TraceParent;\n";
    assert_eq!(
        violations("src/obs/telemetry.rs", "obs", upward),
        [("src/obs/telemetry.rs".to_string(), "kafka".to_string())]
    );
    let sideways = "fn f() { crate::stats::holm::adjusted(&[], &[]); }\n";
    assert_eq!(violations("src/obs/x.rs", "obs", sideways).len(), 1);
    // Downward, in a comment, or in the tests module: not a violation.
    let fine = "use crate::obs::metrics::Metrics; // crate::tools\n#[cfg(test)]\nmod tests {\n    use crate::tools::demo;\n}\n";
    assert!(violations("src/kafka/sink.rs", "kafka", fine).is_empty());
}

/// A file's code, without its `#[cfg(test)] mod tests` (tests may run long).
fn non_test(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(end) => &text[..end],
        None => text,
    }
}

/// Each function of `code` (as rustfmt lays it out) with its first line and length in lines:
/// from its `fn` line to the `}` at the same indentation. Declarations without a body are
/// left out.
fn function_lengths(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let signature = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("async ")
            .trim_start_matches("const ")
            .trim_start_matches("unsafe ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{}}}", " ".repeat(indent));
        let body = lines[at..].iter().position(|l| {
            let open = l.trim_end().ends_with('{');
            let declared =
                l.trim_end().ends_with(';') && l.len() - l.trim_start().len() <= indent + 4;
            open || declared
        });
        match body.map(|b| lines[at + b].trim_end().ends_with('{')) {
            Some(true) => {}
            _ => continue,
        }
        // A one-line body (`fn f() -> u8 { 1 }`) ends where it starts.
        if line.trim_end().ends_with('}') {
            out.push((name, at + 1, 1));
            continue;
        }
        if let Some(end) = lines[at..].iter().position(|l| l.trim_end() == close) {
            out.push((name, at + 1, end + 1));
        }
    }
    out
}

/// The longest a file of `src/` (tests aside) and a function may be.
const MAX_FILE_LINES: usize = 500;
const MAX_FUNCTION_LINES: usize = 80;

#[test]
fn files_and_functions_stay_readable() {
    let mut too_long = Vec::new();
    for (path, _, text) in sources() {
        if test_only(&path) {
            continue;
        }
        let code = non_test(&text);
        let lines = code.lines().count();
        if lines > MAX_FILE_LINES {
            too_long.push(format!("{path}: {lines} lines"));
        }
        for (name, line, length) in function_lengths(code) {
            if length > MAX_FUNCTION_LINES {
                too_long.push(format!("{path}:{line}: fn {name}, {length} lines"));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "over {MAX_FILE_LINES} lines a file or {MAX_FUNCTION_LINES} a function (split by concern): {too_long:#?}"
    );
}

#[test]
fn the_length_check_measures_functions_as_laid_out() {
    let code = "fn a() {\n    let x = 1;\n}\n\ntrait T {\n    fn b(&self);\n    fn c(&self) -> u8 { 1 }\n}\n\npub(crate) async fn d(\n    x: u8,\n) -> u8 {\n    x\n}\n";
    assert_eq!(
        function_lengths(code),
        [
            ("a".to_string(), 1, 3),
            ("c".to_string(), 7, 1),
            ("d".to_string(), 10, 5)
        ]
    );
    let long = format!(
        "fn long() {{\n{}}}\n",
        "    x();\n".repeat(MAX_FUNCTION_LINES)
    );
    assert!(function_lengths(&long)[0].2 > MAX_FUNCTION_LINES);
}

#[test]
fn clap_stays_in_config() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|(_, module, text)| module != "config" && non_test(text).contains("clap::"))
        .map(|(path, _, _)| path)
        .collect();
    assert!(
        outside.is_empty(),
        "command-line parsing outside config/ and main.rs (take plain settings instead): {outside:?}"
    );
}
