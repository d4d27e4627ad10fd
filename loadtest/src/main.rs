//! `make loadtest`: runs every scenario for each profile and writes the reports.

use brain2_loadtest::config::HarnessConfig;
use brain2_loadtest::run::{progress, run};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = HarnessConfig::parse();
    let report = run(&config).await?;
    report.write(&config.out)?;
    println!("{}", report.markdown());
    progress(format_args!("reports in {}", config.out.display()));
    Ok(())
}
