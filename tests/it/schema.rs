//! `stratbox schema`: the printed JSON Schemas describe what stratbox really writes and reads.

use std::process::{Command, Output};

use crate::common::{json, root};

fn stratbox(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .output()
        .expect("stratbox runs")
}

/// The schema `stratbox schema DOCUMENT` prints, compiled.
fn printed_schema(document: &str) -> jsonschema::Validator {
    let out = stratbox(&["schema", document], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema = json(&out);
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|err| panic!("`stratbox schema {document}` is not a valid schema: {err}"))
}

fn assert_valid(validator: &jsonschema::Validator, instance: &serde_json::Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the schema:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

/// A status, the source that ends with it, extra arguments and environment variables.
type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn real_outcomes_of_every_status_match_the_printed_schema() {
    let validator = printed_schema("outcome");
    let dir = tempfile::tempdir().expect("temp dir");
    let missing_guest = dir.path().join("no-such-guest.wasm");
    let missing_guest = missing_guest.to_str().expect("UTF-8 temp path");
    let cases: [Case; 6] = [
        ("ok", "print('hello')", &[], &[]),
        (
            "ok",
            "import random\nprint(random.random())",
            &["--seed", "7"],
            &[],
        ),
        ("error", "raise ValueError('no')", &[], &[]),
        ("rejected", "import socket\nprint(1)", &[], &[]),
        (
            "killed",
            "while True:\n    pass",
            &["--fuel", "50000000"],
            &[],
        ),
        (
            "unavailable",
            "print(1)",
            &["--backend", "wasm"],
            &[("STRATBOX_GUEST", missing_guest)],
        ),
    ];
    for (status, source, extra, envs) in cases {
        let file = dir.path().join(format!("{status}.py"));
        std::fs::write(&file, source).expect("fixture");
        let file = file.to_str().expect("UTF-8 temp path");
        let mut args = vec!["run", file, "--json"];
        args.extend_from_slice(extra);
        let outcome = json(&stratbox(&args, envs));
        assert_eq!(outcome["status"], status, "{outcome:#}");
        assert_valid(&validator, &outcome, &format!("the {status} outcome"));
    }
}

#[test]
fn the_outcome_schema_refuses_what_stratbox_never_writes() {
    let validator = printed_schema("outcome");
    let outcome = json(&stratbox(
        &["run", "examples/strategies/sma_crossover.py", "--json"],
        &[],
    ));
    assert_valid(&validator, &outcome, "the example's outcome");
    let mut bad = outcome.clone();
    bad["status"] = "finished".into();
    assert!(!validator.is_valid(&bad), "an unknown status passes");
    let mut bad = outcome.clone();
    bad["usage"]["fuel"] = (-1).into();
    assert!(!validator.is_valid(&bad), "negative fuel passes");
    let mut bad = outcome;
    bad["not_reproducible"] = serde_json::json!(["everything"]);
    assert!(
        !validator.is_valid(&bad),
        "an unknown unreproducible part passes"
    );
}

#[test]
fn a_sample_request_parses_and_an_unknown_field_is_refused() {
    let validator = printed_schema("request");
    let sample = serde_json::json!({
        "id": "r1",
        "source": "print(1)",
        "input": {"prices": [1.0, 2.5]},
        "filename": "r1.py",
        "backend": "wasm",
        "profile": "strict",
        "limits": {"wall-time": "1s", "memory": "64MiB", "fuel": 1_000_000_000u64,
                   "stdout": 4096, "output-overflow": "kill", "metering": "fuel"}
    });
    assert_valid(&validator, &sample, "the sample request");
    let parsed: stratbox::request::BatchRequest =
        serde_json::from_value(sample.clone()).expect("the sample request parses");
    assert_eq!(parsed.id.as_deref(), Some("r1"));
    assert_eq!(
        parsed
            .limits
            .as_ref()
            .and_then(|limits| limits.memory_bytes),
        Some(64 << 20)
    );
    assert_eq!(parsed.check(), Ok(()));

    let mut unknown = sample;
    unknown["sorce"] = "print(2)".into();
    assert!(
        !validator.is_valid(&unknown),
        "the schema lets `sorce` through"
    );
    let err = serde_json::from_value::<stratbox::request::BatchRequest>(unknown)
        .expect_err("an unknown field is refused");
    assert!(err.to_string().contains("sorce"), "{err}");

    let mut unknown_limit = serde_json::json!({"source": "print(1)", "limits": {"walltime": "1s"}});
    assert!(
        !validator.is_valid(&unknown_limit),
        "the schema lets `limits.walltime` through"
    );
    unknown_limit["limits"] = serde_json::json!({"metering": "never"});
    assert!(
        !validator.is_valid(&unknown_limit),
        "the schema lets an unknown metering through"
    );

    let bad_backend = serde_json::json!({"source": "print(1)", "backend": "vm"});
    assert!(
        !validator.is_valid(&bad_backend),
        "an unknown backend passes"
    );
}

#[test]
fn batch_outcomes_and_invalid_ones_match_the_printed_schema() {
    let validator = printed_schema("outcome");
    let dir = tempfile::tempdir().expect("temp dir");
    let requests = dir.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        "{\"id\": \"a\", \"source\": \"print(1)\"}\n{\"id\": \"b\", \"sorce\": 1}\n",
    )
    .expect("requests");
    let out = stratbox(
        &[
            "batch",
            requests.to_str().expect("UTF-8 temp path"),
            "--ordered",
        ],
        &[],
    );
    let outcomes: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(outcomes.len(), 2, "{out:?}");
    assert_eq!(
        (&outcomes[0]["status"], &outcomes[1]["status"]),
        (&"ok".into(), &"invalid".into())
    );
    for outcome in &outcomes {
        assert_valid(&validator, outcome, "a batch outcome");
    }
}
