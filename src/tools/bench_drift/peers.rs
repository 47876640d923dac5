//! The peer tools on the same windows: `scripts/drift-peers/peers.py` (Evidently, NannyML,
//! alibi-detect, the old PSI rule, each with its defaults) in its own Python, fed the
//! reference and the windows through a pipe, answering one JSON line per tool and window.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// How to run the peers.
#[derive(Debug, Clone)]
pub struct Peers {
    /// The Python with the peers installed (`scripts/py-env.sh scripts/drift-peers/requirements.txt`).
    pub python: PathBuf,
    /// `peers.py`.
    pub script: PathBuf,
    /// Which tools (`peers.py --tools`).
    pub tools: String,
}

/// What the window stream is: the header `peers.py` reads first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Header<'a> {
    /// Features per row.
    pub features: usize,
    /// Their names.
    pub feature_names: &'a [String],
    /// Reference rows.
    pub reference_rows: usize,
    /// Rows per window.
    pub window_rows: usize,
    /// Windows that follow.
    pub windows: usize,
    /// Free text.
    pub scenario: String,
}

/// One tool's verdict on one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The tool (e.g. `alibi-ks`, `evidently-any`).
    pub tool: String,
    /// The window's index in the stream.
    pub window: usize,
    /// Whether it alerted (`None`: it failed on the window).
    pub alert: Option<bool>,
    /// Seconds it took.
    pub seconds: f64,
}

/// A running `peers.py`.
pub struct Run {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: JoinHandle<Vec<String>>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::tool("bench-drift", format!("peers.py: {what}: {e}"))
}

impl Peers {
    /// Starts `peers.py` and sends it the header and the reference rows (row-major).
    pub fn start(&self, header: &Header, reference: &[f64]) -> Result<Run> {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .args(["--tools", &self.tools])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(&format!("cannot start {}", self.python.display()), e))?;
        let stdout = child.stdout.take().expect("piped");
        // Read while we write, or both pipes fill and wait on each other.
        let output = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
                .collect()
        });
        let mut input = BufWriter::new(child.stdin.take().expect("piped"));
        let mut line = serde_json::to_vec(header).expect("a header serializes");
        line.push(b'\n');
        input
            .write_all(&line)
            .map_err(|e| failed("writing the header", e))?;
        let mut run = Run {
            child,
            input,
            output,
        };
        run.rows(reference)?;
        Ok(run)
    }
}

impl Run {
    /// Sends a window's rows (row-major).
    pub fn window(&mut self, rows: &[f64]) -> Result<()> {
        self.rows(rows)
    }

    fn rows(&mut self, values: &[f64]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        (self.input.write_all(&bytes)).map_err(|e| failed("writing rows", e))
    }

    /// Waits for the verdicts on every window sent.
    pub fn finish(mut self) -> Result<Vec<Verdict>> {
        self.input.flush().map_err(|e| failed("writing rows", e))?;
        drop(self.input);
        let lines = self
            .output
            .join()
            .map_err(|_| failed("reading", "the reader panicked"))?;
        let status = self.child.wait().map_err(|e| failed("waiting", e))?;
        if !status.success() {
            return Err(failed("exited", status));
        }
        Ok(lines.iter().filter_map(|l| verdict(l)).collect())
    }
}

/// A verdict line (`None` for the header line and anything else).
fn verdict(line: &str) -> Option<Verdict> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Verdict {
        tool: v.get("tool")?.as_str()?.to_string(),
        window: v.get("window")?.as_u64()? as usize,
        alert: v.get("alert")?.as_bool(),
        seconds: v.get("seconds").and_then(|s| s.as_f64()).unwrap_or(0.0),
    })
}
