//! The children of an operation element, read as tolerantly as eCircle's
//! clients write them: names without regard to case, booleans as
//! `true`/`false`/`1`/`0`, empty elements as absent.

use super::EcmFault;
use crate::xml::Element;

pub struct Params<'a> {
    element: &'a Element,
}

impl<'a> Params<'a> {
    pub fn new(element: &'a Element) -> Params<'a> {
        Params { element }
    }

    /// The trimmed text of a child; `None` when absent or empty.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        self.element
            .child_text(name)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// A child's text, untrimmed (documents and message texts keep their
    /// whitespace); `None` when absent.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.element.child_text(name)
    }

    /// A setting to change: `None` (keep it) when absent or `xsi:nil`, else
    /// its untrimmed text, empty to clear it.
    pub fn setting(&self, name: &str) -> Option<&'a str> {
        let child = self.element.child(name)?;
        let nil = child
            .attribute("nil")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
        (!nil).then_some(child.text.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&'a str, EcmFault> {
        self.text(name)
            .ok_or_else(|| EcmFault::invalid(format!("{name} is missing")))
    }

    /// A boolean; absent, empty or unreadable is `false`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.text(name).map(str::to_ascii_lowercase).as_deref(),
            Some("true" | "1" | "yes")
        )
    }

    /// The texts of every child with this name, in order (repeated parameters).
    pub fn all(&self, name: &'a str) -> Vec<&'a str> {
        self.element
            .children_named(name)
            .map(|c| c.text.as_str())
            .collect()
    }

    /// A numeric id; anything else is `None`.
    pub fn id(&self, name: &str) -> Option<i64> {
        self.text(name).and_then(|t| t.parse().ok())
    }

    /// The operation element itself, for nested parameters.
    pub fn child(&self, name: &str) -> Option<&'a Element> {
        self.element.child(name)
    }
}
