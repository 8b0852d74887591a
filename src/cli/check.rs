//! `stratbox check`: validate and route a strategy without running it.

use serde::Serialize;

use stratbox::policy::Policy;
use stratbox::route::Route;
use stratbox::validate::{Report, Violation, render_human};
use stratbox::{Request, Sandbox, Status};

use super::CheckArgs;
use super::source::{display_name, read_limited};

/// The `--json` output of `check`.
#[derive(Debug, Serialize)]
struct CheckOutcome<'a> {
    /// `ok` (it would run) or `rejected`.
    status: Status,
    /// Where it would run; `null` when rejected.
    route: Option<Route>,
    violations: Vec<Violation>,
    policy: &'a str,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let policy = Policy::load(&args.policy.profile)?;
    let source = read_limited(&args.file, policy.limits.source_bytes, "strategy")?;
    let filename = display_name(&args.file);
    let request = Request {
        backend: args.backend.forced(),
        ..Request::new(&source, &filename)
    };
    let (route, violations) = match Sandbox::new().check(&request, &policy) {
        Ok(route) => (Some(route), Vec::new()),
        Err(violations) => (None, violations),
    };
    let status = if violations.is_empty() {
        Status::Ok
    } else {
        Status::Rejected
    };
    if args.json {
        let outcome = CheckOutcome {
            status,
            route,
            violations,
            policy: &policy.name,
        };
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else if let Some(route) = route {
        eprintln!(
            "stratbox: ok · would run on {} ({}) · profile {}",
            route.backend, route.why, policy.name
        );
    } else {
        eprint!("{}", human(&violations, &source, &filename));
    }
    Ok(status.exit_code())
}

/// The rustc-style rendering of violations, shared with `run`.
pub fn human(violations: &[Violation], source: &[u8], filename: &str) -> String {
    let report = Report {
        violations: violations.to_vec(),
        imports: Vec::new(),
        checked: true,
        inventory: Default::default(),
    };
    render_human(&report, &String::from_utf8_lossy(source), filename)
}
