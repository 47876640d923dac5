use super::*;
use crate::model::dataset::Dataset;
use smartcore::linalg::basic::matrix::DenseMatrix;

#[test]
fn committed_model_scores_like_smartcore() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/breast-cancer/1");
    let model = Model::load(&dir).unwrap();
    let (metadata, reference) = load_reference(&dir).unwrap();
    let training = metadata.training.as_ref().unwrap();
    assert_eq!(training.hyperparameters.n_trees, 100);
    assert_eq!(training.hyperparameters.max_depth, 10);
    assert_eq!(model.engine.n_trees(), 100);
    let data = Dataset::breast_cancer();
    assert_eq!(metadata.features, data.feature_names);
    let expected = reference
        .predict(&DenseMatrix::from_2d_vec(&data.rows).unwrap())
        .unwrap();
    let flat: Vec<f64> = data.rows.concat();
    let mut scored = Default::default();
    model.engine.score(&flat, &mut scored);
    let got: Vec<i32> = scored
        .classes
        .iter()
        .map(|&c| metadata.classes[c])
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn saabas_contributions_and_bias_add_up_to_the_vote_share_on_every_row() {
    let model = Model::open(None).unwrap();
    let data = Dataset::breast_cancer();
    let mut scored = Default::default();
    model.engine.score(&data.rows.concat(), &mut scored);
    let mut largest = 0.0f64;
    for (i, row) in data.rows.iter().enumerate() {
        let predicted = scored.predicted(i);
        let explained = model.explain(row, predicted).unwrap();
        assert_eq!(Some(explained.output), predicted.class());
        assert_eq!(explained.contributions.len(), data.feature_names.len());
        for (class, &share) in scored.row(i).iter().enumerate() {
            let explainer = model.explainer().unwrap();
            let each = model.engine.ensemble().explain(explainer, row, class);
            largest = largest.max((each.score() - share).abs());
        }
    }
    println!("bias + contributions against the vote share, largest difference: {largest:e}");
    assert!(largest <= 1e-9, "largest difference {largest}");
}

#[test]
fn reference_rows_are_checked_like_the_model_file() {
    let dir = tempfile::tempdir().unwrap();
    crate::model::testing::copy_committed(dir.path(), "breast-cancer", "1");
    let model = Model::load(dir.path()).unwrap();
    assert!(model.explainer().is_ok());
    let path = dir.path().join(REFERENCE_FILE);
    let mut csv = std::fs::read_to_string(&path).unwrap();
    let duplicate = csv.lines().nth(1).unwrap().to_owned();
    csv.push_str(&duplicate);
    std::fs::write(&path, csv).unwrap();
    let error = Model::load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("reference rows' checksum mismatch"),
        "{error}"
    );
}
