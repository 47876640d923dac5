//! Every `driftwood` command the docs show is one driftwood accepts: each is read out of the
//! README, ARCHITECTURE.md and docs/ (code blocks and inline code) and parsed by the command
//! line's own definition, so a renamed flag or subcommand cannot stay in the docs. The model
//! lifecycle of docs/models.md is run as it stands, and prints what its comments say. (What
//! the commands that need a broker do is tested where it is built: `tests/integration/`.)

use std::path::Path;
use std::process::Command;

use clap::Parser;
use driftwood::config::cli::Cli;

/// The markdown files a reader is sent to.
fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a document");
            (p.strip_prefix(root).unwrap().display().to_string(), text)
        })
        .collect()
}

/// Where a command is shown: a code block, to be run as it stands, or inline code in prose,
/// which may name a subcommand and some flags only (`driftwood models show`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shown {
    Block,
    Inline,
}

/// The commands of `text` that run driftwood: lines of code blocks (continued lines joined,
/// comments cut) and inline code spans, as `driftwood …` (`cargo run [--release] -- …` is
/// the same command).
fn commands(text: &str) -> Vec<(String, Shown)> {
    let mut found = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let code = line.split(" #").next().unwrap_or("").trim();
            match code.strip_suffix('\\') {
                Some(start) => pending.push_str(start),
                None => {
                    pending.push_str(code);
                    found.push((std::mem::take(&mut pending), Shown::Block));
                }
            }
        } else {
            let spans = line.split('`').skip(1).step_by(2);
            found.extend(spans.map(|c| (c.to_string(), Shown::Inline)));
        }
    }
    found
        .into_iter()
        .filter_map(|(c, shown)| {
            let c = c.trim().trim_start_matches("$ ");
            let rest = ["driftwood ", "cargo run --release -- ", "cargo run -- "]
                .iter()
                .find_map(|p| c.strip_prefix(p))?;
            Some((format!("driftwood {rest}"), shown))
        })
        .collect()
}

/// Shell words, enough for the docs: whitespace-separated, with single or double quotes.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether driftwood accepts `command`: a command in a code block as it stands; one in
/// prose may leave out required arguments (it names a subcommand and flags), but every word
/// it has must be right.
fn parses(command: &str, shown: Shown) -> Result<(), String> {
    use clap::error::ErrorKind;
    match Cli::try_parse_from(words(command)) {
        Ok(_) => Ok(()),
        Err(e) => match (e.kind(), shown) {
            (ErrorKind::DisplayHelp | ErrorKind::DisplayVersion, _) => Ok(()),
            (
                ErrorKind::MissingRequiredArgument
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
                Shown::Inline,
            ) => Ok(()),
            _ => Err(e.to_string()),
        },
    }
}

#[test]
fn every_driftwood_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut refused = Vec::new();
    for (path, text) in documents() {
        for (command, shown) in commands(&text) {
            checked += 1;
            if let Err(e) = parses(&command, shown) {
                refused.push(format!(
                    "{path}: `{command}`: {}",
                    e.lines().next().unwrap_or("")
                ));
            }
        }
    }
    println!("{checked} commands checked");
    assert!(
        checked >= 30,
        "only {checked} commands found: is the extraction broken?"
    );
    assert!(
        refused.is_empty(),
        "commands the docs show that driftwood refuses:\n{}",
        refused.join("\n")
    );
}

#[test]
fn the_check_refuses_a_flag_that_does_not_exist() {
    let block = |c| parses(c, Shown::Block);
    assert!(block("driftwood train --dataset breast-cancer --trees 5").is_ok());
    assert!(block("driftwood train --dataset breast-cancer --forests 5").is_err());
    assert!(block("driftwood bench --help").is_ok());
    assert!(
        block("driftwood models show").is_err(),
        "a block's command must be complete"
    );
    assert!(parses("driftwood models show", Shown::Inline).is_ok());
    assert!(parses("driftwood models shew", Shown::Inline).is_err());
    let text = "Run `driftwood models list`, then:\n```sh\ndriftwood run \\\n  --no-drift   # quiet\n```\n";
    assert_eq!(
        commands(text),
        [
            ("driftwood models list".to_string(), Shown::Inline),
            ("driftwood run --no-drift".to_string(), Shown::Block)
        ]
    );
}

/// Whether `output` says what `expected` says, `…` standing for anything.
fn says(output: &str, expected: &str) -> bool {
    let mut rest = output;
    for piece in expected.split('…').map(str::trim).filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Runs the driftwood under test with `args` in `dir`: whether it succeeded, its standard
/// output and its standard error.
fn driftwood<S: AsRef<std::ffi::OsStr>>(args: &[S], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("driftwood runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Copies the directory `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory") {
        let path = entry.expect("an entry").path();
        let target = to.join(path.file_name().expect("a name"));
        match path.is_dir() {
            true => copy_dir(&path, &target),
            false => drop(std::fs::copy(&path, &target).expect("a copy")),
        }
    }
}

/// docs/models.md's model lifecycle, run line by line in a copy of the repository's model
/// registry: each command succeeds and prints what its comment says.
#[test]
fn the_model_lifecycle_in_the_docs_runs_as_shown() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/models.md")).expect("docs/models.md");
    let block: Vec<&str> = text
        .split("```sh\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("driftwood models list"))
        .expect("the lifecycle block")
        .lines()
        .collect();
    assert!(block.len() >= 5, "{block:?}");
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lifecycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(
        &root.join("models/breast-cancer"),
        &dir.join("models/breast-cancer"),
    );
    for line in block {
        let (command, expected) = line.split_once('#').expect("each line says what it prints");
        let args = words(command);
        assert_eq!(args[0], "driftwood", "{line}");
        let (ok, stdout, stderr) = driftwood(&args[1..], &dir);
        assert!(ok, "`{command}` failed: {stderr}");
        assert!(
            says(&stdout, expected.trim()),
            "`{command}` printed {stdout:?}, the docs say {expected:?}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// The README's first command: the demo prints what the README shows (every figure but the
/// throughput, which the README leaves out as `…`).
#[test]
fn the_demo_prints_what_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let shown = readme
        .split("```\n")
        .find(|b| b.starts_with("records scored"))
        .expect("the README shows the demo's output");
    // `cargo run -- demo`, on a free port for the sidecar.
    let (ok, stdout, stderr) = driftwood(&["demo", "--http-addr", "127.0.0.1:0"], root);
    assert!(ok, "{stderr}");
    for line in shown.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            says(&stdout, line),
            "the README shows {line:?}; the demo printed:\n{stdout}"
        );
    }
}
