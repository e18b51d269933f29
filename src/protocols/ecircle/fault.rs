//! `EcMException`: a SOAP Fault whose detail is `<fault xmlns="rpcns"><code/>
//! <errorMessage/></fault>`, with the message in `faultstring` too, because some
//! clients read the detail and others match the faultstring. The codes and texts
//! clients compare are the spec's (§6); the others are ours, listed in
//! `docs/compat/ecircle.md`.

use super::NAMESPACE;
use crate::Error;
use crate::xml::XmlWriter;
use crate::xml::soap::{Fault, Version};

pub mod code {
    /// No such member (deleteMember, updateMember).
    pub const NO_MEMBER: i32 = 100;
    /// A parameter or document we cannot use (ours).
    pub const INVALID: i32 = 101;
    /// No such user.
    pub const NO_USER: i32 = 103;
    /// No such single message (ours; clients match the text).
    pub const NO_MESSAGE: i32 = 104;
    /// The address is blacklisted or bounced (ours).
    pub const BLACKLISTED: i32 = 105;
    pub const NOT_AUTHENTICATED: i32 = 501;
    /// No permission; also an unknown group.
    pub const PERMISSION: i32 = 502;
    /// Our own failure (ours).
    pub const INTERNAL: i32 = 500;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcmFault {
    pub code: i32,
    pub message: String,
}

impl EcmFault {
    pub fn new(code: i32, message: impl Into<String>) -> EcmFault {
        EcmFault {
            code,
            message: message.into(),
        }
    }

    pub fn not_authenticated() -> EcmFault {
        EcmFault::new(code::NOT_AUTHENTICATED, "Not authenticated")
    }

    pub fn no_user() -> EcmFault {
        EcmFault::new(code::NO_USER, "No such User")
    }

    pub fn no_member() -> EcmFault {
        EcmFault::new(code::NO_MEMBER, "No Member Id")
    }

    pub fn permission() -> EcmFault {
        EcmFault::new(code::PERMISSION, "Permission Problem")
    }

    pub fn invalid(what: impl std::fmt::Display) -> EcmFault {
        EcmFault::new(code::INVALID, format!("Invalid parameter: {what}"))
    }

    pub fn no_message(id: &str) -> EcmFault {
        EcmFault::new(code::NO_MESSAGE, format!("MessageInfo '{id}' not found"))
    }

    pub fn internal() -> EcmFault {
        EcmFault::new(
            code::INTERNAL,
            "The service could not complete the request; try again later.",
        )
    }

    /// A refused domain request in eCircle's terms. Internal errors are logged
    /// by the caller and never described to the client.
    pub fn from_domain(error: &Error) -> EcmFault {
        match error {
            Error::Unauthenticated => EcmFault::not_authenticated(),
            Error::NotFound("recipient") => EcmFault::no_user(),
            // eC-M answers an unknown group with its permission fault.
            Error::NotFound("list" | "group") => EcmFault::permission(),
            Error::NotFound("subscription") => EcmFault::no_member(),
            Error::Blocklisted => {
                EcmFault::new(code::BLACKLISTED, "The address is blacklisted or bounced")
            }
            Error::NotFound(what) => EcmFault::invalid(format!("{what} not found")),
            Error::Invalid { .. } | Error::Conflict(_) => EcmFault::invalid(error),
            Error::Database(_) | Error::Unavailable(_) | Error::Internal(_) => EcmFault::internal(),
        }
    }

    /// The SOAP Fault. Axis answered `soapenv:Server.generalException`; ours is
    /// `soap:Server`, which clients treat alike.
    pub fn to_soap(&self, version: Version) -> Fault {
        let mut w = XmlWriter::new();
        w.open("fault", &[("xmlns", NAMESPACE)])
            .leaf("code", &self.code.to_string())
            .leaf("errorMessage", &self.message)
            .close();
        Fault::server(version, &self.message).with_detail(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_in_the_faultstring_and_the_detail() {
        let xml = EcmFault::not_authenticated()
            .to_soap(Version::Soap11)
            .to_xml();
        assert!(
            xml.contains("<faultstring>Not authenticated</faultstring>"),
            "{xml}"
        );
        assert!(
            xml.contains("<detail><fault xmlns=\"http://webservices.ecircleag.com/rpcns\"><code>501</code><errorMessage>Not authenticated</errorMessage></fault></detail>"),
            "{xml}"
        );
        assert_eq!(
            EcmFault::from_domain(&Error::NotFound("list")).message,
            "Permission Problem"
        );
    }
}
