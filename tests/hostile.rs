//! Hostile input against a SOAP endpoint (WSMailUpImport) and the frontend
//! pages of a real server, on both backends: each request gets the protocol's
//! error, and the server goes on serving. How fast the errors come is measured
//! in `bench/hostile`, not asserted here.

mod common;

use std::time::Duration;

use common::{RunningServer, hostile_documents, http};
use espbridge::domain::accounts::{self, NewAccount};

const SERVICE: &str = "/Services/WSMailUpImport.asmx";
const WAIT: Duration = Duration::from_secs(30);

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
