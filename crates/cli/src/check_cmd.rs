//! Offline validation, as `nginx -t` does: `gatehouse policy check FILE|DIR...` for APIM
//! policy documents and `gatehouse validate -f FILE` (also `gatehouse gateway --config
//! FILE --validate`) for a whole configuration. Both read and compile exactly as the
//! gateway and the control plane do (`gatehouse_policy::check`,
//! `gatehouse_policy::check_configuration`, the gateway's own compile), so every policy
//! added later is checked with no change here. See docs/validation.md.
//!
//! Output: one `path:line:column: error|warning: message [policy]` line per problem
//! and a summary line, or a JSON report (`--format json`). Exit status: 0 when every
//! file is accepted, 1 when one is rejected, 2 for usage errors (a path that does not
//! exist, a bad `--named-values` file).

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse_model::Configuration;
use gatehouse_policy::{CompileContext, ErrorKind, NamedValues, PolicyError};
use serde::Serialize;

/// Output format.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// One line per problem, then a summary line.
    #[default]
    Text,
    /// One JSON report.
    Json,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    /// The document is rejected.
    Error,
    /// Accepted, but worth a look (a named value defined elsewhere, say).
    Warning,
}

/// Whose problem it is: the document's, or Gatehouse's gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Category {
    /// The document is wrong (APIM would refuse it too, or it cannot work).
    Invalid,
    /// Valid for APIM, not supported by Gatehouse yet.
    Unsupported,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem {
    /// Where, for a problem inside a policy document within a configuration
    /// (`apis[echo].policy`); `None` for a standalone document.
    #[serde(skip_serializing_if = "Option::is_none")]
    place: Option<String>,
    /// 1-based; `None` where the position is not known (a configuration reference).
    line: Option<u32>,
    column: Option<u32>,
    severity: Severity,
    category: Category,
    /// The problem's kind (`syntax`, `unknown-element`, `not-supported`, …).
    kind: &'static str,
    /// The policy element concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    message: String,
}

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Accepted,
    Invalid,
    Unsupported,
}

/// One file's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    file: String,
    accepted: bool,
    verdict: Verdict,
    problems: Vec<Problem>,
    /// Policy elements the file uses (policy documents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<Vec<String>>,
    /// Policy expressions it holds (policy documents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    expressions: Option<usize>,
}

impl FileReport {
    fn new(file: &Path, problems: Vec<Problem>) -> Self {
        let errors: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        let verdict = if errors.is_empty() {
            Verdict::Accepted
        } else if errors.iter().all(|p| p.category == Category::Unsupported) {
            Verdict::Unsupported
        } else {
            Verdict::Invalid
        };
        Self {
            file: file.display().to_string(),
            accepted: verdict == Verdict::Accepted,
            verdict,
            problems,
            policies: None,
            expressions: None,
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    files: Vec<FileReport>,
    summary: Summary,
    /// For the rejected files: how many each policy element blocked (which missing
    /// policies would unlock the most files).
    blockers: BTreeMap<String, usize>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    files: usize,
    accepted: usize,
    rejected: usize,
    invalid: usize,
    unsupported: usize,
    warnings: usize,
}

impl Report {
    fn new(files: Vec<FileReport>) -> Self {
        let mut summary = Summary {
            files: files.len(),
            ..Summary::default()
        };
        let mut blockers = BTreeMap::new();
        for file in &files {
            match file.verdict {
                Verdict::Accepted => summary.accepted += 1,
                Verdict::Invalid => summary.invalid += 1,
                Verdict::Unsupported => summary.unsupported += 1,
            }
            summary.warnings += file
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Warning)
                .count();
            if !file.accepted {
                let mut blocked: Vec<&str> = file
                    .problems
                    .iter()
                    .filter(|p| p.severity == Severity::Error)
                    .filter_map(|p| p.policy.as_deref())
                    .collect();
                blocked.sort_unstable();
                blocked.dedup();
                for policy in blocked {
                    *blockers.entry(policy.to_owned()).or_insert(0) += 1;
                }
            }
        }
        summary.rejected = summary.invalid + summary.unsupported;
        Self {
            files,
            summary,
            blockers,
        }
    }

    /// Prints it and gives the exit status.
    fn print(&self, format: Format) -> anyhow::Result<ExitCode> {
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(self)?),
            Format::Text => {
                for file in &self.files {
                    for problem in &file.problems {
                        println!("{}", line(&file.file, problem));
                    }
                }
                let s = &self.summary;
                println!(
                    "{} {}, {} accepted, {} rejected ({} invalid, {} unsupported), {} {}",
                    s.files,
                    if s.files == 1 { "file" } else { "files" },
                    s.accepted,
                    s.rejected,
                    s.invalid,
                    s.unsupported,
                    s.warnings,
                    if s.warnings == 1 {
                        "warning"
                    } else {
                        "warnings"
                    },
                );
            }
        }
        Ok(if self.summary.rejected == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

/// `path:line:column: error: message [policy]`, the form editors and CI annotate.
fn line(file: &str, problem: &Problem) -> String {
    let mut out = String::from(file);
    if let Some(place) = &problem.place {
        out.push_str(": ");
        out.push_str(place);
    }
    if let (Some(line), Some(column)) = (problem.line, problem.column) {
        out.push_str(&format!(":{line}:{column}"));
    }
    let severity = match problem.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let unsupported = if problem.category == Category::Unsupported {
        " (unsupported)"
    } else {
        ""
    };
    out.push_str(&format!(": {severity}{unsupported}: {}", problem.message));
    if let Some(policy) = &problem.policy {
        out.push_str(&format!(" [{policy}]"));
    }
    out
}

/// A policy problem; `place` is the part of its origin after the file name.
fn policy_problem(error: PolicyError, place: Option<String>, lenient_names: bool) -> Problem {
    let severity = if error.kind == ErrorKind::Mapped
        || lenient_names
            && matches!(
                error.kind,
                ErrorKind::UnknownNamedValue | ErrorKind::UnknownFragment
            ) {
        Severity::Warning
    } else {
        Severity::Error
    };
    Problem {
        place,
        line: Some(error.line()),
        column: Some(error.column()),
        severity,
        category: if error.kind == ErrorKind::NotSupported {
            Category::Unsupported
        } else {
            Category::Invalid
        },
        kind: error.kind.as_str(),
        policy: error.element,
        message: error.message,
    }
}

/// A problem of the configuration itself (no line and column).
fn config_problem(kind: &'static str, place: Option<String>, message: String) -> Problem {
    Problem {
        place,
        line: None,
        column: None,
        severity: Severity::Error,
        category: Category::Invalid,
        kind,
        policy: None,
        message,
    }
}

// === gatehouse policy check ===

/// `gatehouse policy check`.
pub(crate) fn policy_check(
    paths: &[PathBuf],
    named_values: Option<&Path>,
    format: Format,
) -> ExitCode {
    match policy_check_inner(paths, named_values, format) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn policy_check_inner(
    paths: &[PathBuf],
    named_values: Option<&Path>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    // Named values, backends and certificates the documents may refer to.
    let context_config = match named_values {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Configuration::from_yaml(&path.display().to_string(), &text)?
        }
        None => Configuration::default(),
    };
    let names: NamedValues = context_config.named_values.iter().collect();
    // Fragments that do not read are `gatehouse validate`'s to report; here they are
    // left out (an inclusion of one then says it is unknown).
    let fragments: Vec<(String, gatehouse_policy::PolicyDocument)> = context_config
        .fragments
        .iter()
        .filter_map(|fragment| {
            gatehouse_policy::parse(&format!("fragments[{}]", fragment.id), &fragment.value)
                .ok()
                .filter(gatehouse_policy::PolicyDocument::is_fragment)
                .map(|document| (fragment.id.clone(), document))
        })
        .collect();
    let context = CompileContext::new(&names)
        .with_backends(&context_config.backends)
        .with_certificates(&context_config.certificates)
        .with_fragments(&fragments);
    let mut files = Vec::new();
    for path in paths {
        collect_documents(path, &mut files)?;
    }
    let reports = files
        .iter()
        .map(|file| check_document(file, &context, named_values.is_none()))
        .collect();
    Report::new(reports).print(format)
}

/// `path` itself, or the `.xml` files under it (sorted, recursively).
fn collect_documents(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_documents(&entry, files)?;
        } else if entry
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            files.push(entry);
        }
    }
    Ok(())
}

fn check_document(file: &Path, context: &CompileContext<'_>, lenient_names: bool) -> FileReport {
    let origin = file.display().to_string();
    let text = match std::fs::read(file).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            let problem = config_problem("syntax", None, "the file is not UTF-8".to_owned());
            return FileReport::new(file, vec![problem]);
        }
        Err(error) => {
            let problem = config_problem("read", None, format!("cannot read it: {error}"));
            return FileReport::new(file, vec![problem]);
        }
    };
    let checked = gatehouse_policy::check(&origin, &text, context);
    let problems = checked
        .problems
        .into_iter()
        .map(|error| policy_problem(error, None, lenient_names))
        .collect();
    let mut report = FileReport::new(file, problems);
    report.policies = Some(checked.policies);
    report.expressions = Some(checked.expressions);
    report
}

// === gatehouse validate ===

/// `gatehouse validate -f FILE` and `gatehouse gateway --config FILE --validate`.
pub(crate) fn validate(file: &Path, format: Format, timings: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(text),
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", file.display());
            return ExitCode::from(2);
        }
    };
    let mut steps = Timings::default();
    let report = Report::new(vec![validate_configuration(file, &text, &mut steps)]);
    if timings {
        eprintln!("{steps}");
    }
    match report.print(format) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// How long each step of `validate` took (`--timings`); a step not reached is absent.
#[derive(Debug, Default)]
struct Timings {
    parse: Option<std::time::Duration>,
    checks: Option<std::time::Duration>,
    gateway_compile: Option<std::time::Duration>,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |step: Option<std::time::Duration>| {
            step.map_or_else(
                || "-".to_owned(),
                |d| format!("{:.1}", d.as_secs_f64() * 1e3),
            )
        };
        write!(
            f,
            "timings (ms): parse {} checks {} gateway-compile {}",
            ms(self.parse),
            ms(self.checks),
            ms(self.gateway_compile)
        )
    }
}

fn validate_configuration(file: &Path, text: &str, timings: &mut Timings) -> FileReport {
    let origin = file.display().to_string();
    let started = std::time::Instant::now();
    let parsed = Configuration::from_yaml(&origin, text);
    timings.parse = Some(started.elapsed());
    let config = match parsed {
        Ok(config) => config,
        Err(gatehouse_model::ConfigError::Yaml {
            line,
            column,
            message,
            ..
        }) => {
            let problem = Problem {
                line: line.and_then(|l| u32::try_from(l).ok()),
                column: column.and_then(|c| u32::try_from(c).ok()),
                ..config_problem("syntax", None, message)
            };
            return FileReport::new(file, vec![problem]);
        }
        Err(other) => {
            return FileReport::new(
                file,
                vec![config_problem("syntax", None, other.to_string())],
            );
        }
    };
    let started = std::time::Instant::now();
    let mut problems = Vec::new();
    if let Err(errors) = config.validate() {
        problems.extend(
            errors
                .0
                .into_iter()
                .map(|error| config_problem("reference", Some(error.path), error.message)),
        );
    }
    let prefix = format!("{origin}: ");
    problems.extend(
        gatehouse_policy::check_configuration(&config, &origin)
            .into_iter()
            .map(|error| {
                let place = error
                    .origin
                    .strip_prefix(&prefix)
                    .map(str::to_owned)
                    .or_else(|| Some(error.origin.clone()));
                policy_problem(error, place, false)
            }),
    );
    timings.checks = Some(started.elapsed());
    if problems.is_empty() {
        // What only the gateway's own load checks: routes (two APIs on one path,
        // operations no request can reach), certificates and keys.
        let metrics = gatehouse_gateway::Metrics::new();
        let tls = gatehouse_gateway::tls::TlsSettings::default();
        let started = std::time::Instant::now();
        let built = gatehouse_gateway::CompiledConfig::build(&config, &origin, 1, &metrics, &tls);
        timings.gateway_compile = Some(started.elapsed());
        match built {
            Ok(_) => {}
            Err(gatehouse_gateway::CompileError::Routing { source, .. }) => {
                problems.extend(
                    source
                        .into_vec()
                        .into_iter()
                        .map(|error| config_problem("routing", None, error.to_string())),
                );
            }
            Err(other) => problems.push(config_problem("gateway", None, other.to_string())),
        }
    }
    FileReport::new(file, problems)
}

#[cfg(test)]
#[path = "check_cmd_tests.rs"]
mod tests;
