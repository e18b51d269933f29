//! Hostile input against a SOAP endpoint (WSMailUpImport) and the frontend
//! pages of a real server, on both backends: each request gets the protocol's
//! error, and the server goes on serving. How fast the errors come is measured
//! in `bench/hostile`, not asserted here.

mod common;

use std::time::Duration;

use common::{RunningServer, http};
use espbridge::domain::accounts::{self, NewAccount};

const SERVICE: &str = "/Services/WSMailUpImport.asmx";
const WAIT: Duration = Duration::from_secs(30);

/// The hostile documents, by name.
pub fn hostile_documents() -> Vec<(&'static str, Vec<u8>)> {
    let envelope = |body: &str| {
        format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>"
        )
    };
    let laughs = {
        let mut doc = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for i in 1..10 {
            let previous = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            doc.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&{previous};").repeat(10)
            ));
        }
        doc.push_str("]>");
        doc + &envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\">&lol9;</GetNlLists>")
    };
    let external = String::from(
        "<?xml version=\"1.0\"?><!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>",
    ) + &envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\">&x;</GetNlLists>");
    let deep = envelope(&("<a>".repeat(100_000) + &"</a>".repeat(100_000)));
    let mut huge = envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\"><pad>").into_bytes();
    huge.resize(50 * 1024 * 1024, b'x');
    let truncated = envelope("<GetNlLists xmlns=\"http://ws.mailupnet.it/\"/>");
    let truncated = truncated[..truncated.len() / 2].to_string();
    let mut invalid_utf8 = envelope("<CreateGroup xmlns=\"http://ws.mailupnet.it/\"><newGroupName>X</newGroupName></CreateGroup>").into_bytes();
    let at = invalid_utf8.iter().position(|b| *b == b'X').unwrap();
    invalid_utf8[at] = 0xff;
    vec![
        ("billion laughs", laughs.into_bytes()),
        ("external entity", external.into_bytes()),
        ("100,000-deep nesting", deep.into_bytes()),
        ("50 MB body", huge),
        ("truncated XML", truncated.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
    ]
}

backend_tests! {
    fn hostile_documents_get_errors_and_the_server_goes_on(t) {
        let created = {
            let mut conn = t.db.conn().unwrap();
            accounts::create(&mut conn, &NewAccount { name: "Target".into(), ..NewAccount::default() }).unwrap()
        };
        let server = RunningServer::start(&t.url, &[]);
        let port = server.port;
        let still_serving = |after: &str| {
            let health = http(port, "GET", "/healthz", &[], Vec::new(), WAIT);
            assert_eq!(health.map(|a| a.status), Some(200), "server stopped serving after {after}");
            let body = "Email=ok%40example.com&List=1&Confirm=0";
            let answer = http(port, "POST", "/frontend/xmlSubscribe.aspx", &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes().to_vec(), WAIT).unwrap();
            assert!(answer.body == "0" || answer.body == "3", "after {after}: {answer:?}");
        };
        for (name, document) in hostile_documents() {
            for content_type in ["text/xml; charset=utf-8", "application/soap+xml"] {
                let answer = http(port, "POST", SERVICE, &[("Content-Type", content_type), ("SOAPAction", "http://ws.mailupnet.it/GetNlLists")], document.clone(), WAIT)
                    .unwrap_or_else(|| panic!("{name}: no answer"));
                assert_eq!(answer.status, 500, "{name}: {}", answer.body);
                let fault = if content_type.starts_with("text/xml") { "<faultcode>soap:Client</faultcode>" } else { "<soap:Value>soap:Sender</soap:Value>" };
                assert!(answer.body.contains(fault), "{name}: {}", answer.body);
                still_serving(name);
            }
            // The same bytes as a frontend form: the generic error code or an
            // invalid-address code, never a crash.
            let answer = http(port, "POST", "/frontend/xmlSubscribe.aspx", &[("Content-Type", "application/x-www-form-urlencoded")], document.clone(), WAIT)
                .unwrap_or_else(|| panic!("{name} (frontend): no answer"));
            assert_eq!(answer.status, 200, "{name} (frontend)");
            assert!(["1", "2"].contains(&answer.body.as_str()), "{name} (frontend): {}", answer.body);
            still_serving(name);
        }
        // Nothing was half-written: only the address subscribed between attacks.
        let mut conn = t.db.conn().unwrap();
        let list = espbridge::domain::lists::get(&mut conn, created.account_id, 1).unwrap();
        assert_eq!((list.subscribed_count, list.pending_count), (1, 0));
    }
}
