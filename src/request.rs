//! The request `batch` and `serve` read: one JSON object per strategy to run.
//!
//! Its JSON Schema is printed by `stratbox schema request`. Unknown fields are refused, so
//! a misspelt field is an error rather than a silently ignored setting.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::policy::RequestLimits;
use crate::route::BackendKind;

/// Which backend runs a requested strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendRequest {
    /// Let the router decide from the imports.
    #[default]
    Auto,
    /// CPython on WASI, in-process.
    Wasm,
    /// The hardened container.
    Container,
}

impl BackendRequest {
    /// The backend this forces, or `None` for automatic routing.
    pub fn forced(self) -> Option<BackendKind> {
        match self {
            BackendRequest::Auto => None,
            BackendRequest::Wasm => Some(BackendKind::Wasm),
            BackendRequest::Container => Some(BackendKind::Container),
        }
    }
}

/// The strategy's stdin as given in a request: a string is passed as it is, any other JSON
/// value is passed as its compact JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Input {
    /// Passed to the strategy as these UTF-8 bytes.
    Text(String),
    /// Passed to the strategy as its JSON serialisation.
    Json(serde_json::Value),
}

impl Input {
    /// The bytes the strategy reads on stdin.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Input::Text(text) => text.as_bytes().to_vec(),
            Input::Json(value) => value.to_string().into_bytes(),
        }
    }
}

/// One strategy to run, as `batch` (one per line) and `serve` (one per body) read it.
///
/// Exactly one of `source` and `path` names the code; at most one of `input` and
/// `input_path` gives its stdin; `check` says whether that holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The caller's name for this request, echoed in the response; `null` when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The strategy's source code. Exactly one of `source` and `path` is given.
    #[serde(default)]
    pub source: Option<String>,
    /// A file holding the strategy's source code, read by the host.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The strategy's stdin: a string as it is, any other JSON value as JSON text. At most
    /// one of `input` and `input_path` is given; without either, stdin is empty.
    #[serde(default)]
    pub input: Option<Input>,
    /// A file whose contents the strategy reads on stdin, read by the host.
    #[serde(default)]
    pub input_path: Option<PathBuf>,
    /// The name tracebacks and diagnostics show for the strategy (default: `path`, or
    /// `<request>` for `source`).
    #[serde(default)]
    pub filename: Option<String>,
    /// Which backend runs the strategy (default: `auto`).
    #[serde(default)]
    pub backend: BackendRequest,
    /// The policy profile: a built-in name or a path to a TOML file (default: `default`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Limits set over the profile's, named and written as in a profile's `[limits]` table
    /// (`{"wall-time": "2s", "memory": "64MiB", "fuel": 1000000000}`); keys not given keep
    /// the profile's values. `stratbox serve` refuses (403) any value looser than its own
    /// profile's.
    #[serde(default)]
    pub limits: Option<Box<RequestLimits>>,
}

/// What is wrong with a request that parsed but cannot be run as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Neither `source` nor `path` was given.
    #[error("a request needs `source` or `path`")]
    NoSource,
    /// Both `source` and `path` were given.
    #[error("a request takes `source` or `path`, not both")]
    TwoSources,
    /// Both `input` and `input_path` were given.
    #[error("a request takes `input` or `input_path`, not both")]
    TwoInputs,
}

impl BatchRequest {
    /// Checks the rules the schema's field list cannot express on its own: one source, at
    /// most one input.
    pub fn check(&self) -> Result<(), RequestError> {
        match (&self.source, &self.path) {
            (None, None) => return Err(RequestError::NoSource),
            (Some(_), Some(_)) => return Err(RequestError::TwoSources),
            _ => {}
        }
        if self.input.is_some() && self.input_path.is_some() {
            return Err(RequestError::TwoInputs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_request_parses() {
        let request: BatchRequest = serde_json::from_str(
            r#"{"id": "a1", "source": "print(1)", "input": {"prices": [1, 2]},
                "filename": "s.py", "backend": "wasm", "profile": "strict"}"#,
        )
        .expect("a valid request");
        assert_eq!(request.backend.forced(), Some(BackendKind::Wasm));
        assert_eq!(
            request.input.as_ref().map(Input::to_bytes),
            Some(br#"{"prices":[1,2]}"#.to_vec())
        );
        assert_eq!(request.check(), Ok(()));
    }

    #[test]
    fn a_string_input_is_passed_as_it_is() {
        let request: BatchRequest =
            serde_json::from_str(r#"{"path": "s.py", "input": "1 2 3\n"}"#).expect("valid");
        assert_eq!(
            request.input.as_ref().map(Input::to_bytes),
            Some(b"1 2 3\n".to_vec())
        );
        assert_eq!(request.backend, BackendRequest::Auto);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<BatchRequest>(r#"{"source": "x", "sorce": "y"}"#)
            .expect_err("an unknown field");
        assert!(err.to_string().contains("unknown field `sorce`"), "{err}");
    }

    #[test]
    fn source_and_input_rules_are_checked() {
        let parse = |text| serde_json::from_str::<BatchRequest>(text).expect("parses");
        assert_eq!(parse("{}").check(), Err(RequestError::NoSource));
        assert_eq!(
            parse(r#"{"source": "x", "path": "y"}"#).check(),
            Err(RequestError::TwoSources)
        );
        assert_eq!(
            parse(r#"{"source": "x", "input": 1, "input_path": "y"}"#).check(),
            Err(RequestError::TwoInputs)
        );
    }
}
