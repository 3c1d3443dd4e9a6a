//! `posthog-embedded`: developer tools for the posthog-embedded SDK.
//!
//! - `serve`: a local PostHog-compatible server (ingest, `/flags`, definitions, faults).
//! - `eval`: evaluate flags exactly as a device would.
//! - `check`: what a device can decide locally, and the flag-store memory it needs.
//! - `capture`: send one event through the std driver.
//! - `fetch-definitions`: download a definitions snapshot for a firmware build.
//!
//! Exit status: 0 on success; 1 when the command ran but the answer is "no" (the definitions do
//! not fit `--capacity`, the event was not delivered); 2 for bad input (a missing file,
//! malformed JSON, an unknown flag, a bad argument). Errors are one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod eval;
mod net;
mod serve;

/// Developer tools for posthog-embedded: a local PostHog-compatible server, flag evaluation
/// exactly as on the device, definition checks, and one-off sends.
#[derive(Parser, Debug)]
#[command(name = "posthog-embedded", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 success, 1 negative result (does not fit, not delivered), 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a local PostHog-compatible server on loopback (ingest, /flags, definitions).
    Serve(serve::ServeArgs),
    /// Evaluate flags for one device exactly as the device would, and print a table.
    Eval(eval::EvalArgs),
    /// Check flag definitions: what a device can decide locally and the memory it needs.
    Check(eval::CheckArgs),
    /// Send one event through the std driver and report the server's answer.
    Capture(net::CaptureArgs),
    /// Download a flag-definitions snapshot (for firmware builds), with ETag.
    FetchDefinitions(net::FetchArgs),
}

/// `--definitions FILE`, shared by `eval` and `check`.
#[derive(Args, Debug)]
struct DefinitionsArg {
    /// Flag definitions JSON (a /flags/definitions response).
    #[arg(long, short = 'd', value_name = "FILE")]
    definitions: PathBuf,
}

/// How a command ended, when not with success.
#[derive(Debug)]
enum Failure {
    /// Bad input: exit 2.
    Input(String),
    /// A negative result, already reported: exit 1.
    Negative(String),
}

impl Failure {
    fn input(msg: impl Into<String>) -> Self {
        Self::Input(msg.into())
    }
}

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve::run(&a),
        Command::Eval(a) => eval::run_eval(&a),
        Command::Check(a) => eval::run_check(&a),
        Command::Capture(a) => net::run_capture(&a),
        Command::FetchDefinitions(a) => net::run_fetch(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Negative(msg)) => {
            if !msg.is_empty() {
                eprintln!("posthog-embedded: {msg}");
            }
            ExitCode::from(1)
        }
        Err(Failure::Input(msg)) => {
            eprintln!("posthog-embedded: error: {msg}");
            ExitCode::from(2)
        }
    }
}
