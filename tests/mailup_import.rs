//! WSMailUpImport over a real port on both backends: the WSDL, Python's zeep
//! and PHP's SoapClient loading it and calling with the Authentication header
//! on SOAP 1.1 and 1.2,
//! hand-written envelopes as old integrations send them, the HTTP GET binding,
//! and the refusals (wrong password, unregistered caller, unknown operation).

mod common;

use std::time::Duration;

use common::{RunningServer, http};
use espbridge::domain::accounts::{self, CreatedAccount, NewAccount};
use espbridge::domain::lists;
use espbridge::domain::recipients::{self, RecipientKey};

const SERVICE: &str = "/Services/WSMailUpImport.asmx";
const WAIT: Duration = Duration::from_secs(10);

fn account(t: &common::TestDb) -> CreatedAccount {
    let mut conn = t.db.conn().unwrap();
    accounts::create(
        &mut conn,
        &NewAccount {
            name: "Import & Co".into(),
            console_id: Some(1234),
            console_hosts: Vec::new(),
        },
    )
    .unwrap()
}

fn soap11(body: &str, header: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:ns1=\"http://ws.mailupnet.it/\"><SOAP-ENV:Header>{header}</SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    .into_bytes()
}

fn auth(user: &str, password: &str) -> String {
    format!(
        "<ns1:Authentication><ns1:User>{user}</ns1:User><ns1:Password>{password}</ns1:Password><ns1:encType>UTF-8</ns1:encType></ns1:Authentication>"
    )
}

/// The escaped `mailupMessage` inside a result element, unescaped.
fn inner(xml: &str, element: &str) -> String {
    let start = xml
        .find(&format!("<{element}"))
        .unwrap_or_else(|| panic!("no <{element}> in {xml}"));
    let open_end = start + xml[start..].find('>').unwrap() + 1;
    let end = xml.find(&format!("</{element}>")).unwrap();
    xml[open_end..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

backend_tests! {
    fn wsdl_zeep_and_raw_envelopes(t) {
        let created = account(t);
        let server = RunningServer::start(&t.url, &[]);
        let port = server.port;

        // The WSDL, at either spelling of the path, points back where it was fetched.
        for path in ["/Services/WSMailUpImport.asmx?WSDL", "/services/WSMailupImport.asmx?wsdl"] {
            let answer = http(port, "GET", path, &[], Vec::new(), WAIT).unwrap();
            assert_eq!(answer.status, 200, "{path}");
            let location = format!("location=\"{}{}\"", server.base(), path.split('?').next().unwrap());
            assert_eq!(answer.body.matches(&location).count(), 4, "{path}: {}", &answer.body[..200]);
            assert!(answer.body.contains("soapAction=\"http://ws.mailupnet.it/CreateGroup\""));
        }

        let guid = created.default_list.guid.clone();
        if let Some(python) = common::test_python() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/zeep_import.py");
            let out = std::process::Command::new(python)
                .args([script, &format!("{}{SERVICE}?WSDL", server.base()), &created.mailup.ws_user, &created.mailup.ws_password, "1", &guid])
                .output()
                .unwrap();
            assert!(out.status.success(), "zeep: {}", String::from_utf8_lossy(&out.stderr));
            let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut group_ids = Vec::new();
            for binding in ["WSMailUpImportSoap", "WSMailUpImportSoap12"] {
                let result = &results[binding];
                let lists = result["lists"].as_str().unwrap();
                assert!(lists.contains("<ReturnCode>0</ReturnCode>"), "{binding}: {lists}");
                assert!(lists.contains(&format!("<List idList=\"1\" listGUID=\"{guid}\" listName=\"News\">")), "{binding}: {lists}");
                let group = result["group"].as_str().unwrap();
                let id: i64 = inner(group, "ReturnCode").parse().unwrap();
                assert!(id > 0, "{binding}: {group}");
                group_ids.push(id);
                assert_eq!(result["fault"], "Authentication failed.", "{binding}");
                assert!(result["fault_detail"].as_str().unwrap().contains("-1002"), "{binding}: {result}");
            }
            assert_ne!(group_ids[0], group_ids[1]);
            // The groups are there for the next call to see.
            let answer = http(port, "POST", SERVICE, &[("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", "\"http://ws.mailupnet.it/GetNlLists\"")], soap11("<ns1:GetNlLists/>", &auth(&created.mailup.ws_user, &created.mailup.ws_password)), WAIT).unwrap();
            let lists = inner(&answer.body, "GetNlListsResult");
            assert!(lists.contains(&format!("<Group idGroup=\"{}\" groupName=\"From zeep WSMailUpImportSoap\"/>", group_ids[0])), "{lists}");

            // The import zeep ran: prepared, started, polled to the end.
            let import = &results["import"];
            let code = |key: &str| -> i64 { inner(import[key].as_str().unwrap(), "ReturnCode").parse().unwrap() };
            assert!(code("created") > 0, "{import}");
            assert_eq!(code("started"), 0, "{import}");
            assert_eq!(code("again"), -603, "a finished process cannot start again: {import}");
            assert_eq!((code("empty"), code("pipe")), (-401, -402), "{import}");
            let details = import["details"].as_str().unwrap();
            for expected in ["<StatusCode>3</StatusCode>", "<IsRunning>False</IsRunning>", "<TotalContacts>3</TotalContacts>", "<NewEmail>3</NewEmail>", "<NewMobile>1</NewMobile>", "<ExistingEmail>0</ExistingEmail>", "<ConfirmationEmail>False</ConfirmationEmail>"] {
                assert!(details.contains(expected), "{expected} in {details}");
            }
            assert!(details.contains(&format!("<ImportProcess idProcess=\"{}\">", code("created"))), "{details}");
            let batch = &results["batch"];
            let started = batch["started"].as_str().unwrap();
            assert!(started.starts_with("<?xml version=\"1.0\" encoding=\"windows-1252\" ?><mailupMessage><mailupBody><ReturnCode>0</ReturnCode><processes><process><processID>"), "{started}");
            assert!(started.contains("<listID>1</listID><ReturnCode>0</ReturnCode></process></processes>"), "{started}");
            let details = batch["details"].as_str().unwrap();
            for expected in ["<StatusCode>3</StatusCode>", "<TotalContacts>2</TotalContacts>", "<NewEmail>1</NewEmail>", "<ExistingEmail>1</ExistingEmail>"] {
                assert!(details.contains(expected), "{expected} in {details}");
            }
            let mut conn = t.db.conn().unwrap();
            let zoe = recipients::get(&mut conn, created.account_id, &RecipientKey::Email("zeep1@example.com".into())).unwrap();
            assert_eq!(zoe.mobile_key.as_deref(), Some("+393331000001"));
            assert_eq!(
                recipients::field_values(&mut conn, created.account_id, zoe.id).unwrap(),
                vec![(1, "Zoe".to_string()), (2, "O'Hara & Sons".to_string())]
            );
            let list = lists::get(&mut conn, created.account_id, 1).unwrap();
            let groups: Vec<i64> = espbridge::domain::groups::memberships(&mut conn, created.account_id, list.id, zoe.id).unwrap().iter().map(|g| g.number).collect();
            assert_eq!(groups, vec![group_ids[0]]);
        }

        // PHP's SoapClient, as the Magento and Joomla integrations use it.
        if let Some(php) = common::test_php() {
        let php = std::process::Command::new(php)
            .args([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/soapclient_import.php"), &format!("{}{SERVICE}?WSDL", server.base()), &created.mailup.ws_user, &created.mailup.ws_password, "1", &guid])
            .output()
            .expect("php with the soap extension (scripts/test installs it)");
        assert!(php.status.success(), "php: {}{}", String::from_utf8_lossy(&php.stdout), String::from_utf8_lossy(&php.stderr));
        let results: serde_json::Value = serde_json::from_slice(&php.stdout).unwrap();
        for version in ["soap11", "soap12"] {
            let result = &results[version];
            assert!(result["lists"].as_str().unwrap().contains("<List idList=\"1\""), "{version}: {result}");
            let id: i64 = inner(result["group"].as_str().unwrap(), "ReturnCode").parse().unwrap();
            assert!(id > 0, "{version}: {result}");
            assert_eq!(result["fault"], "Authentication failed.", "{version}");
            assert!(result["fault_body"].as_str().unwrap().contains("<ReturnCode>-1002</ReturnCode>"), "{version}: {result}");
        }
        let import = &results["import"];
        assert_eq!(inner(import["started"].as_str().unwrap(), "ReturnCode"), "0", "{import}");
        assert_eq!(inner(import["unknown"].as_str().unwrap(), "ReturnCode"), "-501", "{import}");
        let details = import["details"].as_str().unwrap();
        for expected in ["<StatusCode>3</StatusCode>", "<TotalContacts>2</TotalContacts>", "<NewMobile>1</NewMobile>"] {
            assert!(details.contains(expected), "{expected} in {details}");
        }
        let mut conn = t.db.conn().unwrap();
        let pia = recipients::get(&mut conn, created.account_id, &RecipientKey::Email("php1@example.com".into())).unwrap();
        assert_eq!(pia.mobile_key.as_deref(), Some("+393332000001"));
        assert_eq!(recipients::field_values(&mut conn, created.account_id, pia.id).unwrap(), vec![(1, "Pía".to_string())]);
        }

        // A hand-built envelope as classic ASP sends it: header in the legacy
        // namespace, no prefixes on the operation, SOAPAction without quotes.
        let legacy_header = format!("<Authentication xmlns=\"http://tempuri.org/\"><User>{}</User><Password>{}</Password></Authentication>", created.mailup.ws_user, created.mailup.ws_password);
        let body = soap11(&format!("<CreateGroup xmlns=\"http://ws.mailupnet.it/\"><idList>1</idList><listGUID>{{{guid}}}</listGUID><newGroupName>Clienti &amp; Amici</newGroupName></CreateGroup>"), &legacy_header);
        let answer = http(port, "POST", "/SERVICES/wsmailupimport.asmx", &[("Content-Type", "text/xml"), ("SOAPAction", "http://ws.mailupnet.it/CreateGroup")], body.clone(), WAIT).unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.contains("<CreateGroupResponse xmlns=\"http://ws.mailupnet.it/\"><CreateGroupResult>&lt;?xml version=&quot;1.0&quot; encoding=&quot;windows-1252&quot; ?&gt;&lt;mailupMessage&gt;"), "{}", answer.body);
        let first: i64 = inner(&inner(&answer.body, "CreateGroupResult"), "ReturnCode").parse().unwrap();
        // The same name again answers the existing group's id.
        let again = http(port, "POST", SERVICE, &[("Content-Type", "text/xml")], body, WAIT).unwrap();
        assert_eq!(inner(&inner(&again.body, "CreateGroupResult"), "ReturnCode"), first.to_string());

        // Wrong GUID, missing name: the spec's codes.
        for (params, expected) in [
            ("<idList>1</idList><listGUID>not-a-guid</listGUID><newGroupName>x</newGroupName>".to_string(), "-102"),
            (format!("<idList>1</idList><listGUID>{}</listGUID><newGroupName>x</newGroupName>", uuid::Uuid::new_v4()), "-101"),
            (format!("<idList>9</idList><listGUID>{guid}</listGUID><newGroupName>x</newGroupName>"), "-301"),
            (format!("<idList>1</idList><listGUID>{guid}</listGUID><newGroupName> </newGroupName>"), "-302"),
        ] {
            let answer = http(port, "POST", SERVICE, &[("Content-Type", "text/xml")], soap11(&format!("<ns1:CreateGroup>{params}</ns1:CreateGroup>"), &auth(&created.mailup.ws_user, &created.mailup.ws_password)), WAIT).unwrap();
            assert_eq!(inner(&inner(&answer.body, "CreateGroupResult"), "ReturnCode"), expected, "{params}");
        }

        // SOAP 1.2 with the action in the content type.
        let envelope = format!("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header>{}</s:Header><s:Body><GetNlLists xmlns=\"http://ws.mailupnet.it/\"/></s:Body></s:Envelope>", auth(&created.mailup.ws_user, &created.mailup.ws_password).replace("ns1:", "").replace("<Authentication>", "<Authentication xmlns=\"http://ws.mailupnet.it/\">"));
        let answer = http(port, "POST", SERVICE, &[("Content-Type", "application/soap+xml; charset=utf-8; action=\"http://ws.mailupnet.it/GetNlLists\"")], envelope.into_bytes(), WAIT).unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.head.to_ascii_lowercase().contains("content-type: application/soap+xml"));
        assert!(inner(&answer.body, "GetNlListsResult").contains("Clienti &amp; Amici"));

        // The HTTP GET binding answers `<string>`.
        let path = format!("{SERVICE}/GetNlLists?User={}&Password={}", created.mailup.ws_user, created.mailup.ws_password);
        let answer = http(port, "GET", &path, &[], Vec::new(), WAIT).unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains("<string xmlns=\"http://ws.mailupnet.it/\">&lt;?xml"), "{}", answer.body);
        assert!(inner(&answer.body, "string").contains("<ReturnCode>0</ReturnCode>"));
        let answer = http(port, "GET", &format!("{SERVICE}/GetNlLists"), &[], Vec::new(), WAIT).unwrap();
        assert!(inner(&answer.body, "string").contains("<ReturnCode>-1000</ReturnCode>"));

        // Unknown operation, unknown user, operation in a foreign namespace.
        let answer = http(port, "POST", SERVICE, &[("Content-Type", "text/xml")], soap11("<ns1:DropEverything/>", ""), WAIT).unwrap();
        assert_eq!(answer.status, 500);
        assert!(answer.body.contains("<faultcode>soap:Client</faultcode>"), "{}", answer.body);
        let answer = http(port, "POST", SERVICE, &[("Content-Type", "text/xml")], soap11("<ns1:GetNlLists/>", &auth("a999", "x")), WAIT).unwrap();
        assert_eq!(answer.status, 500);
        assert!(answer.body.contains("<ReturnCode>-1001</ReturnCode>"), "{}", answer.body);
        let answer = http(port, "POST", SERVICE, &[("Content-Type", "text/xml")], soap11("<GetNlLists xmlns=\"urn:other\"/>", ""), WAIT).unwrap();
        assert_eq!(answer.status, 500);
    }
}
