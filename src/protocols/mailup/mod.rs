//! MailUp's legacy interfaces: the frontend pages and the SOAP services (later
//! also the batch files).

pub mod frontend;
pub mod import;
pub mod manage;
pub mod report;
pub mod send;
pub mod ws;

use crate::xml::XmlWriter;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    frontend::configure(cfg);
    import::configure(cfg);
    ws::configure(cfg, &send::SERVICE);
    ws::configure(cfg, &manage::SERVICE);
    ws::configure(cfg, &report::SERVICE);
}

/// The `mailupMessage` document of the Import family and WSActivation:
/// `ReturnCode` then whatever `payload` writes. It declares windows-1252, as
/// MailUp's did, and is written in ASCII with character references, which
/// reads the same in that encoding and in UTF-8.
pub fn mailup_message(return_code: i32, payload: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::ascii_only();
    w.raw("<?xml version=\"1.0\" encoding=\"windows-1252\" ?>")
        .open("mailupMessage", &[])
        .open("mailupBody", &[])
        .leaf("ReturnCode", &return_code.to_string());
    payload(&mut w);
    w.finish()
}
