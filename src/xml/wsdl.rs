//! WSDL documents, served at their service's path with `?wsdl`. The files in
//! `wsdl/` are compiled in; their `soap:address` (and `soap12:`/`http:`)
//! locations are rewritten to the URL the client reached the service at, so a
//! generated client calls us back where it found us.

use actix_web::HttpResponse;

/// The WSDL with every `…:address location="…"` pointing at `service_url`.
pub fn with_address(wsdl: &str, service_url: &str) -> String {
    let mut out = String::with_capacity(wsdl.len() + 256);
    let mut rest = wsdl;
    while let Some(at) = rest.find(":address") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        match tag.find("location=\"") {
            Some(start) => {
                let value_start = start + "location=\"".len();
                let value_end = tag[value_start..]
                    .find('"')
                    .map_or(tag.len(), |e| value_start + e);
                out.push_str(&tag[..value_start]);
                out.push_str(&super::writer::escape(service_url));
                out.push_str(&tag[value_end..]);
            }
            None => out.push_str(tag),
        }
        rest = &after[tag_end..];
    }
    out.push_str(rest);
    out
}

pub fn response(wsdl: &str, service_url: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(with_address(wsdl, service_url))
}

/// Whether a query string asks for the WSDL (`?wsdl`, `?WSDL`, `?wsdl=`).
pub fn is_wsdl_query(query: &str) -> bool {
    query.split('&').any(|p| {
        p.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("wsdl"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_every_address() {
        let wsdl = r#"<port><soap:address location="http://old/x.asmx" /></port><port><soap12:address location="http://old/x.asmx"/></port><other location="keep"/>"#;
        let out = with_address(wsdl, "http://new:8080/Services/X.asmx?a=1&b=2");
        assert_eq!(
            out,
            r#"<port><soap:address location="http://new:8080/Services/X.asmx?a=1&amp;b=2" /></port><port><soap12:address location="http://new:8080/Services/X.asmx?a=1&amp;b=2"/></port><other location="keep"/>"#
        );
        assert!(is_wsdl_query("WSDL"));
        assert!(is_wsdl_query("x=1&wsdl="));
        assert!(!is_wsdl_query("op=wsdlx"));
    }
}
