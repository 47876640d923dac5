//! docs/configuration.md's table of `driftwood run`'s flags is checked against clap's own
//! definition of them, so that it cannot go stale: every flag is in the table with its
//! environment variable and default, and the table names no flag that does not exist.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use clap::{Args, Command as Cli};
use driftwood::config::RunConfig;

/// One row of the table: its flags, environment variables and default column.
struct Row {
    flags: Vec<String>,
    envs: String,
    default: String,
}

/// The words of `text` that start with `prefix` and go on in `allowed` characters.
fn words(text: &str, prefix: &str, allowed: fn(char) -> bool) -> Vec<String> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest: String = text[at + prefix.len()..]
                .chars()
                .take_while(|&c| allowed(c))
                .collect();
            format!("{prefix}{rest}")
        })
        .filter(|w| w.len() > prefix.len())
        .collect()
}

/// The first table of docs/configuration.md, by the first flag of each row.
fn documented() -> BTreeMap<String, Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(path).expect("docs/configuration.md");
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let flags = words(cells[0], "--", |c| c.is_ascii_lowercase() || c == '-');
        let row = Row {
            flags: flags.clone(),
            envs: cells.get(1).unwrap_or(&"").to_string(),
            default: cells.get(2).unwrap_or(&"").to_string(),
        };
        for flag in flags {
            rows.insert(
                flag,
                Row {
                    flags: row.flags.clone(),
                    envs: row.envs.clone(),
                    default: row.default.clone(),
                },
            );
        }
    }
    rows
}

#[test]
fn every_flag_of_run_is_documented_with_its_variable_and_default() {
    let rows = documented();
    let run = RunConfig::augment_args(Cli::new("run"));
    let mut checked = 0;
    for arg in run.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(long) = arg.get_long() else { continue };
        let flag = format!("--{long}");
        let row = rows
            .get(&flag)
            .unwrap_or_else(|| panic!("{flag} is not in docs/configuration.md's table"));
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            // A row of two flags names the second variable by its ending only (`…_KEY_FILE`).
            let suffix = env
                .rsplit_once("REGISTRY")
                .map_or(env.as_ref(), |(_, s)| s)
                .to_string();
            assert!(
                row.envs.contains(env.as_ref())
                    || (row.flags.len() > 1 && row.envs.contains(&suffix)),
                "{flag}: its variable {env} is not in its row ({})",
                row.envs
            );
        }
        if let Some(default) = arg.get_default_values().first() {
            let default = default.to_string_lossy();
            let shown = words(&row.default, "`", |c| c != '`');
            assert!(
                shown
                    .first()
                    .is_some_and(|d| d.trim_start_matches('`') == default),
                "{flag}: clap's default is {default:?}, the table says {}",
                row.default
            );
        }
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} flags checked");
}

#[test]
fn the_table_names_only_flags_that_exist() {
    let help = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["run", "--help"])
        .output()
        .expect("driftwood run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in documented().keys() {
        let shown = [format!("{flag} "), format!("{flag}\n"), format!("{flag}=")];
        assert!(
            shown.iter().any(|s| help.contains(s.as_str())),
            "{flag} is in docs/configuration.md but not in `driftwood run --help`"
        );
    }
}
