//! `ordo-sim run SCENARIO [--seeds A..B] [--jobs J] [--out DIR] [--plot]`
//! and `ordo-sim replay SCENARIO --seed S [--trace]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ordo_sim::cli::run(std::env::args_os()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(ordo_sim::Error::Usage(message)) => {
            // clap's usage errors carry their own "error:" prefix.
            if message.starts_with("error") {
                eprint!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
