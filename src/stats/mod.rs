//! Statistics the drift tests are made of, free of anything else in the crate: the reference
//! distributions' tails ([`dist`]), a data set's profile ([`profile`]) and the two-sample tests
//! run on it ([`rank`], [`binned`], [`joint`]) with a value's bin found by a table ([`search`]), the multiple-testing correction ([`holm`]), the
//! sequential alarm ([`cusum`]), the Wilson interval reported with every rate ([`wilson`]), and
//! seeded data to check them on ([`simulate`]).
//!
//! Every test compares a window of n records with a reference of m rows and accounts for the
//! sampling error of both: its statistic's null distribution is stated with each function
//! and checked by simulation in its unit tests.

pub mod binned;
pub mod cusum;
pub mod dist;
pub mod holm;
pub mod joint;
pub mod linalg;
pub mod profile;
pub mod rank;
pub mod search;
pub mod simulate;
pub mod wilson;
