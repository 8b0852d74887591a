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

/// `build.rs` links the binary with packed relative relocations where the toolchain and
/// the C library take them: the loader's fix-ups at every start shrink from 1.1 MB of
/// `RELA` entries to a few KB. The binary must stay position-independent (its code at a
/// random address), with its relocated data read-only once loaded (`GNU_RELRO` and
/// `BIND_NOW`: full RELRO).
#[test]
fn the_binary_is_position_independent_with_packed_relocations() {
    use object::read::elf::{ElfFile64, ProgramHeader};
    use object::{Endianness, Object, ObjectKind, ObjectSection, elf};

    let path = env!("CARGO_BIN_EXE_stratbox");
    let bytes = std::fs::read(path).expect("the stratbox binary");
    let binary = ElfFile64::<Endianness>::parse(&*bytes).expect("a 64-bit ELF binary");
    assert_eq!(
        binary.kind(),
        ObjectKind::Dynamic,
        "the binary must be position-independent (ET_DYN)"
    );
    let section = |name: &str| binary.section_by_name(name);
    let size = |name: &str| section(name).map_or(0, |s| s.size());
    if option_env!("STRATBOX_PACKED_RELOCATIONS").is_some() {
        assert!(size(".relr.dyn") > 0, "no .relr.dyn section in {path}");
        assert!(
            size(".rela.dyn") < 64 << 10,
            ".rela.dyn still holds {} bytes: the relative relocations were not packed",
            size(".rela.dyn")
        );
    } else {
        eprintln!("build.rs found no packed relocations here: position independence only");
    }
    let endian = binary.endian();
    let relro = binary
        .elf_program_headers()
        .iter()
        .any(|header| header.p_type(endian) == elf::PT_GNU_RELRO);
    assert!(relro, "no GNU_RELRO segment in {path}");
    // DT_FLAGS with DF_BIND_NOW, or DT_FLAGS_1 with DF_1_NOW: every symbol bound at load,
    // so that the GOT is read-only too.
    let dynamic = section(".dynamic")
        .and_then(|s| s.data().ok())
        .expect("a .dynamic section");
    let bind_now = dynamic.chunks_exact(16).any(|entry| {
        let tag = i64::from_le_bytes(entry[..8].try_into().unwrap());
        let value = u64::from_le_bytes(entry[8..].try_into().unwrap());
        (tag == elf::DT_FLAGS && value & u64::from(elf::DF_BIND_NOW) != 0)
            || (tag == elf::DT_FLAGS_1 && value & u64::from(elf::DF_1_NOW) != 0)
    });
    assert!(bind_now, "{path} is not linked with BIND_NOW");
}
