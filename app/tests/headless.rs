//! The `fernsicht` binary in headless mode, as a user or a script drives it:
//! real processes, a real relay on loopback, stdin and stdout.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::{App, Relayed, blocking, relay};

#[tokio::test(flavor = "multi_thread")]
async fn host_and_two_viewers_chat_through_the_cli() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let (mut host, number) = relayed.host(&["--accept", "ask"]);
        assert_eq!(number.len(), 5, "{number}");

        let mut viewers = Vec::new();
        for (name, answer, permission) in [("Ada", "c", "control"), ("Bo", "v", "view-only")] {
            let mut v = relayed.view(&number, &["--name", name]);
            let code = v.expect("code ").trim_start_matches("code ").to_owned();
            assert_eq!(code.len(), 6);
            let request = host.expect("viewer ");
            assert!(
                request.ends_with(&format!("\"{name}\" code {code}")),
                "host shows {request:?}, viewer shows code {code}"
            );
            host.expect("allow ");
            host.type_line(answer);
            v.expect("connected e2e aes-256-gcm");
            assert_eq!(v.expect("allowed "), format!("allowed {permission}"));
            host.expect("connected #");
            viewers.push(v);
        }

        host.type_line("Hallo, ich sehe euch");
        for v in &mut viewers {
            v.expect("host: Hallo, ich sehe euch");
        }
        viewers[0].type_line("hello from Ada");
        host.expect("#1 Ada: hello from Ada");
        viewers[1].type_line("hello from Bo");
        host.expect("#2 Bo: hello from Bo");

        viewers[1].type_line("/quit");
        host.expect("left #2");
        assert_eq!(viewers[1].exit_code(), 0);
        host.type_line("/quit");
        viewers[0].expect("ended: the host stopped sharing");
        assert_eq!(viewers[0].exit_code(), 0);
        assert_eq!(host.exit_code(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_number_is_a_clear_error() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let mut v = relayed.view("12345", &[]);
        let line = v.expect("error: ");
        assert_eq!(
            line,
            format!(
                "error: joining session 12345 via {}: the relay refused: there is no session with this number (it may have ended)",
                relayed.addr
            )
        );
        assert_eq!(v.exit_code(), 2);

        let mut v = App::start(&["view", "12a45", "--headless"]);
        let line = v.expect("error: ");
        assert!(line.contains("'a' is not a digit"), "{line}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_must_match() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let (mut host, number) = relayed.host(&["--accept", "control", "--password", "geheim"]);

        let mut v = relayed.view(&number, &[]);
        let line = v.expect("error: ");
        assert!(
            line.contains("this session is protected by a password"),
            "{line}"
        );
        assert_ne!(v.exit_code(), 0);
        let line = host.expect("handshake failed #1");
        assert!(line.contains("the session needs a password"), "{line}");

        let mut v = relayed.view(&number, &["--password", "falsch"]);
        let line = v.expect("ended: ");
        assert!(line.contains("key confirmation failed"), "{line}");
        let line = host.expect("handshake failed #2");
        assert!(line.contains("key confirmation failed"), "{line}");

        let mut v = relayed.view(&number, &["--password", "geheim"]);
        v.expect("connected e2e aes-256-gcm");
        v.expect("allowed control");
    })
    .await;
}
