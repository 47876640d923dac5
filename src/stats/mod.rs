//! Statistics the drift tests are made of, free of anything else in the crate: the reference
//! distributions' tails (`dist`), a data set's profile (`profile`) and the two-sample tests
//! run on it (`rank`, `binned`, `joint`) with a value's bin found by a table (`search`; a
//! row's values tallied at once, `bins`), the multiple-testing correction (`holm`), the
//! sequential alarm (`cusum`), the Wilson interval reported with every rate (`wilson`), and
//! seeded data to check them on ([`simulate`]); and for performance without labels, a
//! classifier's calibration ([`calibration`]) and the expected confusion matrix built on it
//! ([`cbpe`]).
//!
//! Every test compares a window of n records with a reference of m rows and accounts for the
//! sampling error of both: its statistic's null distribution is stated with each function
//! and checked by simulation in its unit tests. Beside them, the hash that chooses shares of
//! records and keys alike everywhere ([`spread`]).

pub(crate) mod binned;
pub(crate) mod bins;
pub mod calibration;
pub mod cbpe;
pub(crate) mod cusum;
pub(crate) mod dist;
pub(crate) mod holm;
pub(crate) mod joint;
pub(crate) mod linalg;
pub(crate) mod profile;
pub(crate) mod rank;
pub(crate) mod search;
pub mod simulate;
pub mod spread;
pub(crate) mod wilson;
