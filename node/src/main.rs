//! The `ordo` command line.

fn main() -> std::process::ExitCode {
    ordo_node::cli::main()
}
