use std::path::{Path, PathBuf};

use wasmparser::{Parser, Payload};

fn built(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wasm/build")
        .join(name)
}

/// What a component holds, nested modules and components included: every section but the
/// custom ones, as `(id, bytes)` in order (sections that only hold a nested binary are
/// left out: their bytes include the nested custom sections), and the names of the
/// custom sections.
fn sections(path: &Path) -> (Vec<(u8, Vec<u8>)>, Vec<String>) {
    let binary = std::fs::read(path).unwrap_or_else(|err| {
        panic!(
            "{} must be built before the tests run (`make guest`): {err}",
            path.display()
        )
    });
    let mut code = Vec::new();
    let mut custom = Vec::new();
    for payload in Parser::new(0).parse_all(&binary) {
        let payload =
            payload.unwrap_or_else(|err| panic!("{} does not parse: {err}", path.display()));
        match payload {
            Payload::CustomSection(section) => custom.push(section.name().to_owned()),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    code.push((id, binary[range].to_vec()));
                }
            }
        }
    }
    (code, custom)
}

/// `wasm/build.sh` drops the guest's debug names (`wasm/strip_names.py`): wasmtime would
/// otherwise deserialise the function names' table at every start. The guest must carry
/// no name section, the copy kept for profilers must carry them, and every other section
/// of the two (code, data, types, imports, the component's own) must be the same bytes.
#[test]
fn the_guest_drops_its_debug_names_and_nothing_else() {
    let (stripped, stripped_custom) = sections(&built("stratbox-guest.wasm"));
    let (named, named_custom) = sections(&built("stratbox-guest.names.wasm"));
    let is_name = |name: &String| name == "name" || name == "component-name";

    assert!(
        !stripped_custom.iter().any(is_name),
        "the guest still carries name sections: {stripped_custom:?}"
    );
    assert!(
        named_custom.iter().filter(|name| is_name(name)).count() > 1,
        "the named copy lost its names: {named_custom:?}"
    );
    let kept: Vec<&String> = named_custom.iter().filter(|name| !is_name(name)).collect();
    assert_eq!(
        stripped_custom.iter().collect::<Vec<_>>(),
        kept,
        "only the name sections may be dropped"
    );
    assert!(stripped.len() > 100, "too few sections: {}", stripped.len());
    assert_eq!(
        stripped.len(),
        named.len(),
        "a section was dropped or added"
    );
    for (index, (left, right)) in stripped.iter().zip(&named).enumerate() {
        assert!(
            left == right,
            "section {index} (id {}) differs between the guest and its named copy",
            left.0
        );
    }
}
