//! `stratbox audit verify FILE`: is an audit log whole?

use stratbox::audit::{AuditError, verify};

use super::{AuditArgs, AuditCommand};

/// Exit code of a log that is not sound.
const EXIT_UNSOUND: u8 = 1;

pub fn run(args: AuditArgs) -> anyhow::Result<u8> {
    match args.command {
        AuditCommand::Verify { file } => match verify(&file) {
            Ok(verified) => {
                println!(
                    "{}: {} record{}, every line whole",
                    file.display(),
                    verified.records,
                    if verified.records == 1 { "" } else { "s" }
                );
                Ok(0)
            }
            Err(err @ (AuditError::Invalid { .. } | AuditError::Truncated { .. })) => {
                eprintln!("stratbox: {err}");
                Ok(EXIT_UNSOUND)
            }
            // An unreadable log is a usage error (exit code 2).
            Err(err) => Err(err.into()),
        },
    }
}
