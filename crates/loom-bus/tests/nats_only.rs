//! Behaviour specific to `NatsBus`: reconnecting across a server restart, failing fast
//! at start, and option errors.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use loom_bus::{Bus, BusState, CloseError, ConnectError, NatsBus, NatsOptions};

use crate::util::{barrier, connect, next, publish, start_server, subscribe, wait_for_state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_keeps_receiving_after_a_server_restart() {
    let mut server = start_server();
    let url = server.url();
    let bus = connect(&url).await;
    let mut sub = subscribe(&bus, "restart.x", None).await;
    barrier(&bus).await;
    publish(&bus, "restart.x", "before").await;
    assert_eq!(next(&mut sub).await.payload, "before");

    server = within!(tokio::task::spawn_blocking(move || {
        server.stop().expect("stop nats-server");
        server
    }))
    .expect("stop task");
    wait_for_state(&bus, BusState::Disconnected).await;

    server = within!(tokio::task::spawn_blocking(move || {
        server
            .restart()
            .expect("restart nats-server on the same port");
        server
    }))
    .expect("restart task");
    assert_eq!(server.url(), url, "same port after restart");
    wait_for_state(&bus, BusState::Connected).await;

    // Publish from another connection until the old subscription, resubscribed by the
    // client after reconnecting, receives one.
    let publisher = connect(&url).await;
    let message = within!(async {
        loop {
            publish(&publisher, "restart.x", "after").await;
            match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                Ok(Some(message)) => break message,
                Ok(None) => panic!("subscription ended across the restart"),
                Err(_) => continue,
            }
        }
    });
    assert_eq!(message.payload, "after");
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast_naming_the_url() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("probe a free port");
        listener.local_addr().expect("probe address").port()
    };
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let err = within!(NatsBus::connect(NatsOptions::new(&url))).expect_err("nothing listens");
    let elapsed = started.elapsed();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn option_errors_name_the_bad_value() {
    let err = within!(NatsBus::connect(NatsOptions::new(""))).expect_err("no server");
    assert!(matches!(err, ConnectError::NoServers), "{err:?}");

    let server = start_server();
    let missing = "/nonexistent/loom-test.creds";
    let err = within!(NatsBus::connect(
        NatsOptions::new(&server.url()).with_credentials_file(missing)
    ))
    .expect_err("missing credentials file");
    assert!(matches!(err, ConnectError::Credentials { .. }), "{err:?}");
    assert!(err.to_string().contains(missing), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_gives_up_at_its_deadline_when_the_server_is_gone() {
    let mut server = start_server();
    let bus = within!(NatsBus::connect(
        NatsOptions::new(&server.url()).with_drain_timeout(Duration::from_millis(300))
    ))
    .expect("connect");
    server = within!(tokio::task::spawn_blocking(move || {
        server.stop().expect("stop nats-server");
        server
    }))
    .expect("stop task");
    wait_for_state(&bus, BusState::Disconnected).await;
    let started = Instant::now();
    let err = within!(bus.close()).expect_err("cannot drain without a server");
    assert!(matches!(err, CloseError::TimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.url()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(bus.state(), BusState::Closed);
    drop(server);
}

#[tokio::test]
async fn named_client_with_several_urls_connects_to_the_live_one() {
    let server = start_server();
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("probe a free port");
        listener.local_addr().expect("probe address").port()
    };
    let options = NatsOptions::new(&format!("nats://127.0.0.1:{dead}"))
        .with_server(&server.url())
        .with_name("loom-bus-test");
    let bus = within!(NatsBus::connect(options)).expect("one server is up");
    assert!(bus.urls().contains(&server.url()));
    assert_eq!(bus.state(), BusState::Connected);
    let reply = within!(bus.request("nobody", Bytes::new(), Duration::from_secs(5)));
    assert!(reply.is_err());
}
