//! Replays every saved fuzzing input (fuzz/corpus/TARGET/*: seeds from the test
//! fixtures, and inputs that once crashed) through its harness: each must end
//! in a value or an error, never a panic.

use std::path::Path;

use voxfield_fuzzing::{exercise, TARGETS};

#[test]
fn every_saved_input_is_an_error_or_a_value_never_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
    for target in TARGETS {
        let dir = corpus.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("fuzz/corpus/{target} is missing: every target keeps its seeds there");
        };
        for e in entries {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| exercise(target, &data));
            let Ok(result) = run else {
                panic!("{target}: {} panicked", path.display());
            };
            // Seeds are valid files made by the reference libraries: they must open.
            let seed = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-");
            assert!(
                !seed || result.is_ok(),
                "{target}: {}: {result:?}",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
}
