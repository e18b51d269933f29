//! The operational endpoints and HTTP basics, in-process on both backends.

mod common;

use actix_web::{App, test, web};
use espbridge::config::Settings;
use espbridge::server::{AppState, configure, track_request};

fn state(t: &common::TestDb, max_body_bytes: usize) -> AppState {
    AppState::new(
        t.db.clone(),
        Settings {
            max_body_bytes,
            ..Settings::default()
        },
    )
}

backend_tests! {
    fn health_ready_and_metrics(t) {
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(
                App::new()
                    .configure(configure(state(t, 1024)))
                    .wrap(actix_web::middleware::from_fn(track_request)),
            )
            .await;
            for path in ["/healthz", "/readyz", "/readyz"] {
                let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
                assert_eq!(res.status(), 200, "{path}");
            }
            let res = test::call_service(&app, test::TestRequest::get().uri("/no/such/page").to_request()).await;
            assert_eq!(res.status(), 404);
            let body = test::call_and_read_body(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
            let text = String::from_utf8(body.to_vec()).unwrap();
            assert!(text.contains("espbridge_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 2"), "{text}");
            assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"), "{text}");
            assert!(text.contains("espbridge_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"), "{text}");
            assert!(text.contains("espbridge_db_pool_connections{state=\"max\"}"), "{text}");
        });
    }

    fn bodies_over_the_limit_are_refused(t) {
        actix_web::rt::System::new().block_on(async {
            let app = test::init_service(
                App::new()
                    .configure(configure(state(t, 64)))
                    .route("/echo", web::post().to(|body: web::Bytes| async move { body.len().to_string() })),
            )
            .await;
            let small = test::TestRequest::post().uri("/echo").set_payload(vec![b'x'; 64]).to_request();
            assert_eq!(test::call_and_read_body(&app, small).await, "64");
            let big = test::TestRequest::post().uri("/echo").set_payload(vec![b'x'; 65]).to_request();
            assert_eq!(test::call_service(&app, big).await.status(), 413);
        });
    }
}
