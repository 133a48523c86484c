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
        println!(
            "{}: ok (node {} of {})",
            args.config.display(),
            validated.me,
            validated.committee.size()
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let node = crate::runtime::start(validated).await?;
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        Ok(())
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
