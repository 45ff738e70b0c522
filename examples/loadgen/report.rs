//! How a scenario's result leaves the program: JSON to `--json PATH`, and a
//! one-line summary on stdout.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// A finished scenario.
pub struct Outcome {
    /// The result as pretty JSON, fields in the order the result type declares them.
    json: String,
    /// One line for a human.
    summary: String,
}

impl Outcome {
    /// An outcome from any serializable result.
    pub fn new(result: &impl Serialize, summary: String) -> anyhow::Result<Self> {
        let mut json = serde_json::to_string_pretty(result)?;
        json.push('\n');
        Ok(Self { json, summary })
    }

    /// Writes the JSON (if asked) and prints the summary.
    pub fn publish(&self, json_path: Option<&Path>) -> anyhow::Result<()> {
        if let Some(path) = json_path {
            std::fs::write(path, &self.json).with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{}", self.summary);
        Ok(())
    }
}
