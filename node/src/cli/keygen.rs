use std::path::PathBuf;

use ordo_types::Keypair;

use crate::keyfile;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the key file.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let keypair = Keypair::generate()?;
    keyfile::write(&args.out, &keypair, args.force)?;
    println!("{}", keypair.public());
    eprintln!("wrote {} (public key above)", args.out.display());
    Ok(())
}
