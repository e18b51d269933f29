//! The wire protocols: each translates its requests into domain calls and the
//! results back into its own responses and error codes.

pub mod ecircle;
pub mod exacttarget;
pub mod form;
pub mod mailup;
