//! MailUp's legacy interfaces: the frontend pages (and, later, the SOAP services
//! and batch files).

pub mod frontend;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    frontend::configure(cfg);
}
