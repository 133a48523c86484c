use std::path::PathBuf;

use crate::config::NodeConfig;

#[derive(clap::Args)]
pub struct Args {
    /// The node's config file (see `ordo testnet`).
    #[arg(long)]
    config: PathBuf,
    /// Check the config and exit.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let validated = NodeConfig::load(&args.config)?.validate(&args.config)?;
    tracing::info!(
        node = validated.me,
        key = %validated.keypair.public(),
        listen = %validated.listen,
        api = %validated.api_listen,
        "configuration valid"
    );
    if args.check {
        println!("{}: ok (node {} of {})", args.config.display(), validated.me, validated.committee.size());
        return Ok(());
    }
    anyhow::bail!("the node runtime is not available yet; use --check to validate the config")
}
