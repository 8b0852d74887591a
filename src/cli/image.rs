//! `stratbox image build`: build the container backend's runtime image offline.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use stratbox::backend::container::Engine;
use stratbox::image::{self, ImageSpec, Progress, Stage};

use super::{ImageArgs, ImageCommand};

pub fn run(args: ImageArgs) -> anyhow::Result<u8> {
    match args.command {
        ImageCommand::Build { force, keep_old } => build(force, keep_old),
    }
}

fn build(force: bool, keep_old: bool) -> anyhow::Result<u8> {
    let spec = ImageSpec::current();
    super::runtime()?.block_on(async {
        let engine = match Engine::connect(None).await {
            Ok(engine) => engine,
            Err(err) => {
                eprintln!("stratbox: {:#}", anyhow::Error::from(err));
                return Ok(stratbox::Status::Unavailable.exit_code());
            }
        };
        let mut stderr = std::io::stderr();
        let mut report = |progress: Progress| {
            // Progress goes to stderr; a failed write to it is not worth failing the build.
            let _ = match progress {
                Progress::Stage { stage, elapsed } => match stage {
                    Stage::Done => Ok(()),
                    stage => writeln!(stderr, "[{}] {stage}", clock(elapsed)),
                },
                Progress::Bootstrap { message, elapsed } => {
                    writeln!(stderr, "[{}]   {message}", clock(elapsed))
                }
                Progress::Import {
                    sent_bytes,
                    total_bytes,
                    elapsed,
                } => writeln!(
                    stderr,
                    "[{}]   sent {:.0} of {:.0} MiB",
                    clock(elapsed),
                    mib(sent_bytes),
                    mib(total_bytes)
                ),
            };
        };
        let built = image::build(engine.docker(), &spec, force, keep_old, &mut report)
            .await
            .with_context(|| format!("cannot build {}", spec.tag()))?;
        let size = built
            .size_bytes
            .map(|b| format!(", {:.0} MiB", mib(b)))
            .unwrap_or_default();
        if !built.removed.is_empty() {
            eprintln!(
                "stratbox: removed older images {}",
                built.removed.join(", ")
            );
        }
        if built.rebuilt {
            eprintln!(
                "stratbox: built {} ({}{size}) in {}",
                built.tag,
                short_id(&built.id),
                clock(built.elapsed)
            );
        } else {
            eprintln!(
                "stratbox: {} is current ({}{size}); nothing to do (use --force to rebuild)",
                built.tag,
                short_id(&built.id)
            );
        }
        Ok(0)
    })
}

fn clock(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    format!("{:>2}:{:02}", secs / 60, secs % 60)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
