//! The XML machinery every XML protocol shares: reading untrusted documents into
//! a bounded element tree, SOAP envelopes and faults, a strict writer, and WSDL
//! serving. Protocol modules build on this and never parse XML themselves.

pub mod soap;
pub mod tree;
pub mod writer;
pub mod wsdl;

pub use tree::{Element, Limits, XmlError};
pub use writer::XmlWriter;
