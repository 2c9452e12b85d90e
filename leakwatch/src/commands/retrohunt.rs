//! `leakwatch retrohunt`: after new fingerprints are imported, check every image the index has
//! already seen and raise alerts for past sightings ([`node::retrohunt`]); print them.

use std::path::Path;
use std::process::ExitCode;

use node::Config;

pub async fn run(
    data_dir: &Path,
    config: &Config,
    amqp: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Through the bus when given, so alert consumers see retro-hunt alerts like live ones.
    let bus = match amqp {
        Some(url) => Some(node::open_bus(Some(url), &config.bus).await?),
        None => None,
    };
    let report = node::retrohunt::run(data_dir, config, bus).await?;
    for a in &report.alerts {
        if json {
            super::print_json(a)?;
        } else {
            println!("{}\t{}\t{}", a.label, a.distance, a.url);
        }
    }
    eprintln!(
        "retro-hunt: {} sightings checked against {} fingerprints in {:.1}s: {} matched, {} new \
         alerts{}",
        report.sightings,
        report.fingerprints,
        report.elapsed.as_secs_f64(),
        report.alerts.len(),
        report.new,
        if report.unrecorded > 0 {
            format!(
                ", {} sightings recorded without views (older format) skipped",
                report.unrecorded
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
