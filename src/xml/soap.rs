//! SOAP 1.1 and 1.2 envelopes: reading a request down to its operation element,
//! writing document/literal wrapped responses, and faults.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::tree::{self, Element, Limits, XmlError};
use super::writer::XmlWriter;

pub const SOAP11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Soap11,
    Soap12,
}

impl Version {
    fn namespace(self) -> &'static str {
        match self {
            Version::Soap11 => SOAP11_NAMESPACE,
            Version::Soap12 => SOAP12_NAMESPACE,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Version::Soap11 => "text/xml; charset=utf-8",
            Version::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }

    /// The version a request's content type asks for, used to answer in kind
    /// when the body is too broken to tell.
    pub fn from_content_type(content_type: &str) -> Version {
        if content_type
            .to_ascii_lowercase()
            .contains("application/soap+xml")
        {
            Version::Soap12
        } else {
            Version::Soap11
        }
    }
}

/// A request read down to its operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub version: Version,
    /// The `Header` element, if any.
    pub header: Option<Element>,
    /// The first element inside `Body`.
    pub operation: Element,
    /// The SOAPAction header (1.1) or the `action` parameter of the content type
    /// (1.2), unquoted; empty when absent.
    pub action: String,
}

impl Request {
    /// Reads a SOAP request off an HTTP POST: the body up to `max_bytes`, then
    /// the envelope ([`Request::parse`]). Whatever is wrong is answered with
    /// the Fault the client's SOAP version expects, ready to send.
    pub async fn read(
        req: &actix_web::HttpRequest,
        payload: actix_web::web::Payload,
        max_bytes: usize,
    ) -> Result<Request, HttpResponse> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let content_type = header("content-type");
        let limits = Limits {
            max_bytes,
            ..Limits::default()
        };
        let body = match crate::web::read_body(payload, max_bytes).await {
            Ok(body) => body,
            Err(e) => {
                let version = Version::from_content_type(&content_type);
                return Err(Fault::client(version, &format!("{e}.")).response());
            }
        };
        Request::parse(&body, &content_type, &header("soapaction"), &limits)
            .map_err(|fault| fault.response())
    }

    /// Reads an envelope. `content_type` and `soap_action` are the request's
    /// headers (empty when absent).
    pub fn parse(
        body: &[u8],
        content_type: &str,
        soap_action: &str,
        limits: &Limits,
    ) -> Result<Request, Fault> {
        let fallback = Version::from_content_type(content_type);
        let root = tree::parse(body, limits).map_err(|e| Fault::from_xml(fallback, &e))?;
        // The envelope's namespace decides the version; clients that label a
        // 1.1 envelope `application/soap+xml` (or the reverse) are common.
        let version = match root.namespace.as_deref() {
            Some(SOAP11_NAMESPACE) => Version::Soap11,
            Some(SOAP12_NAMESPACE) => Version::Soap12,
            _ if root.name == "Envelope" => {
                return Err(Fault::version_mismatch(fallback));
            }
            _ => {
                return Err(Fault::client(
                    fallback,
                    "The request is not a SOAP envelope.",
                ));
            }
        };
        let mut header = None;
        let mut body_element = None;
        for child in root.children {
            if child.namespace.as_deref() != Some(version.namespace()) {
                continue;
            }
            match child.name.as_str() {
                "Header" => header = Some(child),
                "Body" => body_element = Some(child),
                _ => {}
            }
        }
        let operation = body_element
            .and_then(|b| b.children.into_iter().next())
            .ok_or_else(|| Fault::client(version, "The SOAP Body has no operation element."))?;
        let action = match version {
            Version::Soap11 => soap_action.to_string(),
            Version::Soap12 => content_type_action(content_type).unwrap_or_default(),
        };
        Ok(Request {
            version,
            header,
            operation,
            action: action.trim().trim_matches('"').to_string(),
        })
    }

    /// The operation's local name, after checking that it is in one of the
    /// service's namespaces. A SOAPAction naming another operation is logged and
    /// otherwise ignored: the body is what the client means, and clients of the
    /// era got SOAPAction wrong in many ways.
    pub fn operation_in(&self, namespaces: &[&str]) -> Result<&str, Fault> {
        let operation = &self.operation;
        if !namespaces.contains(&operation.namespace.as_deref().unwrap_or("")) {
            return Err(Fault::client(
                self.version,
                &format!(
                    "Server did not recognize the operation {{{}}}{}.",
                    operation.namespace.as_deref().unwrap_or(""),
                    operation.name
                ),
            ));
        }
        if !self.action.is_empty() {
            let named = self
                .action
                .rsplit(['/', '#'])
                .next()
                .unwrap_or(&self.action);
            if !named.eq_ignore_ascii_case(&operation.name) {
                log::debug!(
                    "SOAPAction {:?} differs from the body's operation {}",
                    self.action,
                    operation.name
                );
            }
        }
        Ok(&operation.name)
    }
}

fn content_type_action(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (key, value) = parameter.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("action")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// A SOAP envelope around body content written by `body`.
pub fn envelope(version: Version, body: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.open(
        "soap:Envelope",
        &[
            ("xmlns:soap", version.namespace()),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
        ],
    );
    w.open("soap:Body", &[]);
    body(&mut w);
    w.finish()
}

/// The document/literal wrapped answer `<{op}Response xmlns="{ns}"><{op}Result>
/// text</{op}Result></{op}Response>`; a result that is itself an XML document
/// travels as escaped text, as ASP.NET services return strings.
pub fn wrapped_response(
    version: Version,
    namespace: &str,
    operation: &str,
    result: &str,
) -> HttpResponse {
    let body = envelope(version, |w| {
        w.open(&format!("{operation}Response"), &[("xmlns", namespace)])
            .leaf(&format!("{operation}Result"), result);
    });
    HttpResponse::Ok()
        .content_type(version.content_type())
        .body(body)
}

/// The answer of an ASP.NET HTTP GET/POST binding: the result string in a
/// `<string>` element of the service's namespace.
pub fn string_response(namespace: &str, result: &str) -> HttpResponse {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        .open("string", &[("xmlns", namespace)])
        .text(result);
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(w.finish())
}

/// Who is to blame, in each version's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong (`soap:Client` / `soap:Sender`).
    Client,
    /// We failed (`soap:Server` / `soap:Receiver`).
    Server,
    VersionMismatch,
}

/// A SOAP Fault, answered with HTTP 500 as SOAP 1.1 and 1.2 both require.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub version: Version,
    pub code: FaultCode,
    pub reason: String,
    /// Markup for the `detail` element (already XML), if any.
    pub detail: Option<String>,
}

impl Fault {
    pub fn client(version: Version, reason: &str) -> Fault {
        Fault {
            version,
            code: FaultCode::Client,
            reason: reason.to_string(),
            detail: None,
        }
    }

    pub fn server(version: Version, reason: &str) -> Fault {
        Fault {
            version,
            code: FaultCode::Server,
            reason: reason.to_string(),
            detail: None,
        }
    }

    fn version_mismatch(version: Version) -> Fault {
        Fault {
            version,
            code: FaultCode::VersionMismatch,
            reason: "The envelope is neither SOAP 1.1 nor SOAP 1.2.".into(),
            detail: None,
        }
    }

    /// A document we refused to read.
    pub fn from_xml(version: Version, error: &XmlError) -> Fault {
        Fault::client(
            version,
            &format!("The request is not acceptable XML: {error}."),
        )
    }

    pub fn with_detail(mut self, detail: String) -> Fault {
        self.detail = Some(detail);
        self
    }

    pub fn to_xml(&self) -> String {
        envelope(self.version, |w| {
            w.open("soap:Fault", &[]);
            match self.version {
                Version::Soap11 => {
                    let code = match self.code {
                        FaultCode::Client => "soap:Client",
                        FaultCode::Server => "soap:Server",
                        FaultCode::VersionMismatch => "soap:VersionMismatch",
                    };
                    w.leaf("faultcode", code).leaf("faultstring", &self.reason);
                    if let Some(detail) = &self.detail {
                        w.open("detail", &[]).raw(detail).close();
                    }
                }
                Version::Soap12 => {
                    let code = match self.code {
                        FaultCode::Client => "soap:Sender",
                        FaultCode::Server => "soap:Receiver",
                        FaultCode::VersionMismatch => "soap:VersionMismatch",
                    };
                    w.open("soap:Code", &[]).leaf("soap:Value", code).close();
                    w.open("soap:Reason", &[])
                        .open("soap:Text", &[("xml:lang", "en")])
                        .text(&self.reason)
                        .close()
                        .close();
                    if let Some(detail) = &self.detail {
                        w.open("soap:Detail", &[]).raw(detail).close();
                    }
                }
            }
        })
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(StatusCode::INTERNAL_SERVER_ERROR)
            .content_type(self.version.content_type())
            .body(self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, content_type: &str, action: &str) -> Result<Request, Fault> {
        Request::parse(body.as_bytes(), content_type, action, &Limits::default())
    }

    #[test]
    fn reads_both_versions_with_any_prefix() {
        let soap11 = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><A xmlns="urn:x"><User>u</User></A></e:Header><e:Body><ns1:GetNlLists xmlns:ns1="http://ws.mailupnet.it/"/></e:Body></e:Envelope>"#;
        let request = parse(soap11, "text/xml", "\"http://ws.mailupnet.it/GetNlLists\"").unwrap();
        assert_eq!(request.version, Version::Soap11);
        assert_eq!(request.action, "http://ws.mailupnet.it/GetNlLists");
        assert_eq!(
            request.operation_in(&["http://ws.mailupnet.it/"]),
            Ok("GetNlLists")
        );
        assert_eq!(
            request.header.unwrap().children[0].child_text("user"),
            Some("u")
        );
        let soap12 = r#"<soap12:Envelope xmlns:soap12="http://www.w3.org/2003/05/soap-envelope"><soap12:Body><Op xmlns="urn:s"/></soap12:Body></soap12:Envelope>"#;
        let request = parse(
            soap12,
            "application/soap+xml; charset=utf-8; action=\"urn:s/Op\"",
            "",
        )
        .unwrap();
        assert_eq!(request.version, Version::Soap12);
        assert_eq!(request.action, "urn:s/Op");
        assert!(request.operation_in(&["urn:other"]).is_err());
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        let fault = parse("<Envelope><Body/></Envelope>", "text/xml", "").unwrap_err();
        assert_eq!(fault.code, FaultCode::VersionMismatch);
        let fault = parse("<html/>", "application/soap+xml", "").unwrap_err();
        assert_eq!(
            (fault.version, fault.code),
            (Version::Soap12, FaultCode::Client)
        );
        let empty_body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#;
        assert_eq!(
            parse(empty_body, "text/xml", "").unwrap_err().code,
            FaultCode::Client
        );
    }

    #[test]
    fn faults_have_each_versions_shape() {
        let fault = Fault::client(Version::Soap11, "bad & wrong");
        let xml = fault.to_xml();
        assert!(xml.contains(
            "<faultcode>soap:Client</faultcode><faultstring>bad &amp; wrong</faultstring>"
        ));
        let fault = Fault::server(Version::Soap12, "down");
        let xml = fault.to_xml();
        assert!(xml.contains("<soap:Code><soap:Value>soap:Receiver</soap:Value></soap:Code>"));
        assert!(xml.contains("<soap:Text xml:lang=\"en\">down</soap:Text>"));
        assert_eq!(fault.response().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
