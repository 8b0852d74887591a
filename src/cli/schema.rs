//! `stratbox schema outcome|request`: the JSON Schema of what stratbox writes and reads.

use std::io::Write as _;

use stratbox::Outcome;
use stratbox::request::BatchRequest;

use super::{SchemaArgs, SchemaDocument};

pub fn run(args: SchemaArgs) -> anyhow::Result<u8> {
    let schema = match args.document {
        SchemaDocument::Outcome => schemars::schema_for!(Outcome),
        SchemaDocument::Request => schemars::schema_for!(BatchRequest),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&schema)?)?;
    Ok(0)
}
