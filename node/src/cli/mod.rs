//! The `ordo` command line: one subcommand a file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::{self, LogFormat};

mod bench;
mod keygen;
mod localnet;
mod run;
mod testnet;

/// Ordo: a decentralized sequencer (2-chain HotStuff BFT over QUIC).
#[derive(Parser)]
#[command(name = "ordo", version, about, propagate_version = true)]
struct Cli {
    /// Log format on stderr; the level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a node key file (ed25519, mode 0600).
    Keygen(keygen::Args),
    /// Write keys, a committee file and one config per node for an n-node
    /// committee on loopback.
    Testnet(testnet::Args),
    /// Run a node from its config file.
    Run(run::Args),
    /// Run n nodes on loopback as child processes, with optional load, a
    /// live progress line and a summary.
    Localnet(localnet::Args),
    /// The end-to-end benchmark: n fresh nodes, open-loop load, held TPS,
    /// latency percentiles and resource use as JSON.
    Bench(bench::Args),
    /// Deterministic simulations of the consensus core (seeded scenarios,
    /// faults, Byzantine nodes).
    #[command(subcommand)]
    Sim(ordo_sim::cli::SimCommand),
}

/// Parses the command line, runs the command, and turns an error into one
/// line on stderr and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Testnet(args) => testnet::run(args),
        Command::Run(args) => run::run(args),
        Command::Localnet(args) => localnet::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Sim(command) => match ordo_sim::cli::execute(command) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, outermost first. A cause whose text
/// the line already holds is left out: many errors name their source in
/// their own message (`cannot read X: <io error>`), and printing the chain
/// would repeat it.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let types = ordo_types::Error::Io {
            path: "gone.toml".into(),
            source: io,
        };
        let error = anyhow::Error::from(crate::Error::from(types)).context("starting");
        assert_eq!(
            one_line(&error),
            "starting: cannot read gone.toml: No such file"
        );
        let plain = anyhow::anyhow!("first\nsecond");
        assert_eq!(one_line(&plain), "first second");
    }
}
