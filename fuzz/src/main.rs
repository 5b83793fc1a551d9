//! The AFL++ target: `VOXFIELD_FUZZ_TARGET` names the parser (see
//! `voxfield_fuzzing::TARGETS`), each input goes through its harness.

fn main() {
    let target = std::env::var("VOXFIELD_FUZZ_TARGET").unwrap_or_else(|_| {
        eprintln!(
            "set VOXFIELD_FUZZ_TARGET to one of {:?}",
            voxfield_fuzzing::TARGETS
        );
        std::process::exit(2)
    });
    afl::fuzz!(|data: &[u8]| {
        let _ = voxfield_fuzzing::exercise(&target, data);
    });
}
