//! Time as people and monitors write it: zones ([`zone`]) and points in
//! time ([`instant`]). Every time input of a job, a signal or a config
//! goes through here, so a mistake is caught the same way everywhere.

pub mod instant;
pub mod zone;
