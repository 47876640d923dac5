//! For the model's unit tests: the committed artifact, copied where a test needs it.

use std::path::Path;

/// Copies every file of the committed `models/breast-cancer/1` into `dir`, naming the copy
/// model `name` version `version` in its metadata.
pub fn copy_committed(dir: &Path, name: &str, version: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let file = entry.unwrap().file_name();
        std::fs::copy(source.join(&file), dir.join(&file)).unwrap();
    }
    let path = dir.join(super::artifact::METADATA_FILE);
    let mut metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    metadata["name"] = name.into();
    metadata["version"] = version.into();
    std::fs::write(&path, serde_json::to_string_pretty(&metadata).unwrap()).unwrap();
}
