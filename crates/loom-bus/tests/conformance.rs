//! One behaviour suite, instantiated for `MemoryBus` and for `NatsBus` on a real
//! nats-server: `conformance::memory::<test>` and `conformance::nats::<test>`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use loom_bus::{BusExt, BusState, PublishError, RequestErrorKind, SubjectError, SubscribeError};
use serde::Deserialize;

use crate::util::{Fixture, STEP, assert_silent, barrier, next, publish, spawn_echo, subscribe};

/// How long a test waits to be sure that nothing more arrives.
const QUIET: Duration = Duration::from_millis(150);

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::util::memory()).await;
                }
            )*
        }

        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::util::nats()).await;
                }
            )*
        }
    };
}

conformance_tests!(
    publish_reaches_a_subscriber,
    publish_without_subscribers_is_a_no_op,
    every_plain_subscriber_gets_each_message,
    queue_group_delivers_each_message_to_exactly_one_member,
    queue_group_spans_members_with_different_patterns,
    star_matches_exactly_one_token,
    full_wildcard_matches_one_or_more_trailing_tokens,
    dropping_a_subscription_stops_delivery,
    explicit_unsubscribe_stops_delivery,
    publish_with_reply_carries_the_reply_subject,
    request_gets_the_reply,
    concurrent_requests_are_correlated,
    request_without_responders_fails_fast,
    request_to_a_silent_responder_times_out,
    malformed_json_is_skipped_and_the_next_valid_message_delivered,
    json_messages_expose_the_reply_subject,
    close_delivers_what_was_published_before_it,
    close_ends_subscriptions_after_what_they_hold,
    operations_after_close_fail_with_closed,
    invalid_subjects_are_rejected_naming_the_subject,
    state_is_connected_while_open,
);

async fn publish_reaches_a_subscriber(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut sub = subscribe(&*bus, "greet.hello", None).await;
    assert_eq!(sub.subject(), "greet.hello");
    publish(&*bus, "greet.hello", "hi").await;
    let message = next(&mut sub).await;
    assert_eq!(message.subject, "greet.hello");
    assert_eq!(message.reply, None);
    assert_eq!(message.payload, "hi");
}

async fn publish_without_subscribers_is_a_no_op(f: &dyn Fixture) {
    let bus = f.bus().await;
    within!(bus.publish("nobody.listens", "x".into())).expect("publish succeeds");
    // A subscriber that arrives later does not get the old message.
    let mut sub = subscribe(&*bus, "nobody.listens", None).await;
    publish(&*bus, "nobody.listens", "second").await;
    assert_eq!(next(&mut sub).await.payload, "second");
}

async fn every_plain_subscriber_gets_each_message(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(subscribe(&*bus, "fan.out", None).await);
    }
    for i in 0..5 {
        publish(&*bus, "fan.out", i.to_string()).await;
    }
    for sub in &mut subs {
        for i in 0..5 {
            assert_eq!(next(sub).await.payload, i.to_string());
        }
        assert_silent(sub, QUIET).await;
    }
}

/// Collects `n` messages from two queue members; returns each payload with its member.
async fn collect_from_members(
    a: loom_bus::Subscription,
    b: loom_bus::Subscription,
    n: usize,
) -> Vec<(char, String)> {
    let mut merged = futures::stream::select(a.map(|m| ('a', m)), b.map(|m| ('b', m)));
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let (member, message) = next(&mut merged).await;
        got.push((
            member,
            String::from_utf8_lossy(&message.payload).into_owned(),
        ));
    }
    assert_silent(&mut merged, QUIET).await;
    got
}

fn assert_each_once_and_spread(got: &[(char, String)], n: usize) {
    let payloads: BTreeSet<usize> = got
        .iter()
        .map(|(_, payload)| payload.parse().expect("numeric payload"))
        .collect();
    assert_eq!(
        payloads,
        (0..n).collect::<BTreeSet<_>>(),
        "each message exactly once"
    );
    let mut per_member: HashMap<char, usize> = HashMap::new();
    for (member, _) in got {
        *per_member.entry(*member).or_default() += 1;
    }
    assert_eq!(
        per_member.len(),
        2,
        "both members got messages: {per_member:?}"
    );
}

async fn queue_group_delivers_each_message_to_exactly_one_member(f: &dyn Fixture) {
    const N: usize = 100;
    let bus = f.bus().await;
    let a = subscribe(&*bus, "work.items", Some("workers")).await;
    let b = subscribe(&*bus, "work.items", Some("workers")).await;
    assert_eq!(a.queue_group(), Some("workers"));
    let mut watcher = subscribe(&*bus, "work.items", None).await;
    for i in 0..N {
        publish(&*bus, "work.items", i.to_string()).await;
    }
    // A plain subscriber next to the group still sees everything.
    for i in 0..N {
        assert_eq!(next(&mut watcher).await.payload, i.to_string());
    }
    let got = collect_from_members(a, b, N).await;
    assert_each_once_and_spread(&got, N);
}

async fn queue_group_spans_members_with_different_patterns(f: &dyn Fixture) {
    const N: usize = 60;
    let bus = f.bus().await;
    let a = subscribe(&*bus, "span.*", Some("q")).await;
    let b = subscribe(&*bus, "span.x", Some("q")).await;
    for i in 0..N {
        publish(&*bus, "span.x", i.to_string()).await;
    }
    let got = collect_from_members(a, b, N).await;
    assert_each_once_and_spread(&got, N);
}

async fn star_matches_exactly_one_token(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut star = subscribe(&*bus, "wild.*", None).await;
    let mut middle = subscribe(&*bus, "wild.*.end", None).await;
    for subject in [
        "wild",
        "wild.one.two",
        "other.one",
        "wild.one",
        "wild.two.end",
    ] {
        publish(&*bus, subject, subject.to_owned()).await;
    }
    assert_eq!(next(&mut star).await.subject, "wild.one");
    assert_eq!(next(&mut middle).await.subject, "wild.two.end");
    assert_silent(&mut star, QUIET).await;
    assert_silent(&mut middle, QUIET).await;
}

async fn full_wildcard_matches_one_or_more_trailing_tokens(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut tail = subscribe(&*bus, "deep.>", None).await;
    let mut everything = subscribe(&*bus, ">", None).await;
    let mut exact = subscribe(&*bus, "deep.a", None).await;
    for subject in ["deep", "deep.a", "deep.a.b.c", "shallow"] {
        publish(&*bus, subject, subject.to_owned()).await;
    }
    assert_eq!(next(&mut tail).await.subject, "deep.a");
    assert_eq!(next(&mut tail).await.subject, "deep.a.b.c");
    assert_silent(&mut tail, QUIET).await;
    assert_eq!(next(&mut exact).await.subject, "deep.a");
    assert_silent(&mut exact, QUIET).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next(&mut everything).await.subject);
    }
    assert_eq!(seen, ["deep", "deep.a", "deep.a.b.c", "shallow"]);
}

async fn dropping_a_subscription_stops_delivery(f: &dyn Fixture) {
    let bus = f.bus().await;
    let gone = subscribe(&*bus, "gone.x", None).await;
    let mut kept = subscribe(&*bus, "gone.y", None).await;
    drop(gone);
    // Nobody listens on gone.x any more, and the bus says so at once.
    let err = within!(bus.request("gone.x", Bytes::new(), STEP))
        .expect_err("the only subscriber was dropped");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
    publish(&*bus, "gone.y", "still here").await;
    assert_eq!(next(&mut kept).await.payload, "still here");
}

async fn explicit_unsubscribe_stops_delivery(f: &dyn Fixture) {
    let bus = f.bus().await;
    let sub = subscribe(&*bus, "unsub.x", None).await;
    within!(sub.unsubscribe()).expect("unsubscribe succeeds");
    let err = within!(bus.request("unsub.x", Bytes::new(), STEP))
        .expect_err("the only subscriber unsubscribed");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
}

async fn publish_with_reply_carries_the_reply_subject(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut sub = subscribe(&*bus, "rr.ask", None).await;
    within!(bus.publish_with_reply("rr.ask", "rr.answers.1", "q".into()))
        .expect("publish_with_reply succeeds");
    let message = next(&mut sub).await;
    assert_eq!(message.reply.as_deref(), Some("rr.answers.1"));
    assert_eq!(message.payload, "q");
}

/// A responder on its own handle (its own connection on NATS), ready when this returns.
async fn start_echo(f: &dyn Fixture, subject: &str) {
    let server_bus = f.bus().await;
    let sub = subscribe(&*server_bus, subject, Some("echoers")).await;
    barrier(&*server_bus).await;
    spawn_echo(server_bus, sub);
}

async fn request_gets_the_reply(f: &dyn Fixture) {
    start_echo(f, "svc.echo").await;
    let client = f.bus().await;
    let reply = within!(client.request("svc.echo", "ping".into(), STEP)).expect("request answered");
    assert_eq!(reply.payload, "ping");
}

async fn concurrent_requests_are_correlated(f: &dyn Fixture) {
    const N: usize = 200;
    start_echo(f, "svc.concurrent").await;
    let client = f.bus().await;
    let requests = (0..N).map(|i| {
        let client = &client;
        async move {
            let reply = client
                .request("svc.concurrent", i.to_string().into(), STEP)
                .await
                .unwrap_or_else(|err| panic!("request {i}: {err}"));
            assert_eq!(reply.payload, i.to_string(), "reply for request {i}");
        }
    });
    within!(futures::future::join_all(requests));
}

async fn request_without_responders_fails_fast(f: &dyn Fixture) {
    let client = f.bus().await;
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let err =
        within!(client.request("svc.nobody", "ping".into(), timeout)).expect_err("nobody listens");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
    assert_eq!(err.subject(), "svc.nobody");
    assert!(err.to_string().contains("svc.nobody"), "{err}");
    assert!(
        elapsed < Duration::from_millis(500),
        "NoResponders took {elapsed:?}, the timeout was {timeout:?}"
    );
}

async fn request_to_a_silent_responder_times_out(f: &dyn Fixture) {
    let server_bus = f.bus().await;
    let _silent = subscribe(&*server_bus, "svc.silent", None).await;
    barrier(&*server_bus).await;
    let client = f.bus().await;
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = within!(client.request("svc.silent", "ping".into(), timeout))
        .expect_err("the responder never answers");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), RequestErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("svc.silent"), "{err}");
    assert!(elapsed >= timeout, "timed out early, after {elapsed:?}");
}

#[derive(Debug, PartialEq, Deserialize)]
struct Task {
    id: u32,
}

async fn malformed_json_is_skipped_and_the_next_valid_message_delivered(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut tasks = subscribe(&*bus, "json.tasks", None).await.json::<Task>();
    assert_eq!(tasks.subject(), "json.tasks");
    let malformed: [&[u8]; 5] = [
        b"not json",
        &[0xff, 0xfe, 0xfd],
        b"{\"id\": \"\xff\"}",
        br#"{"id": "seven"}"#,
        br#"[1, 2]"#,
    ];
    for body in malformed {
        publish(&*bus, "json.tasks", Bytes::copy_from_slice(body)).await;
    }
    within!(bus.publish_json("json.tasks", &serde_json::json!({"id": 7, "extra": true})))
        .expect("publish_json succeeds");
    assert_eq!(next(&mut tasks).await, Task { id: 7 });
    assert_silent(&mut tasks, QUIET).await;
}

async fn json_messages_expose_the_reply_subject(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut tasks = subscribe(&*bus, "json.req", None)
        .await
        .json_messages::<Task>();
    publish(&*bus, "json.req", "garbage").await;
    within!(bus.publish_json_with_reply(
        "json.req",
        "json.req.reply",
        &serde_json::json!({"id": 3})
    ))
    .expect("publish_json_with_reply succeeds");
    let (message, task) = next(&mut tasks).await;
    assert_eq!(task, Task { id: 3 });
    assert_eq!(message.reply.as_deref(), Some("json.req.reply"));
    assert_eq!(message.json::<Task>().expect("body decodes"), task);
}

async fn close_delivers_what_was_published_before_it(f: &dyn Fixture) {
    const N: usize = 1_000;
    let subscriber = f.bus().await;
    let mut sub = subscribe(&*subscriber, "drain.items", None).await;
    barrier(&*subscriber).await;
    let publisher = f.bus().await;
    for i in 0..N {
        publish(&*publisher, "drain.items", i.to_string()).await;
    }
    within!(publisher.close()).expect("close drains");
    assert_eq!(publisher.state(), BusState::Closed);
    for i in 0..N {
        assert_eq!(next(&mut sub).await.payload, i.to_string());
    }
}

async fn close_ends_subscriptions_after_what_they_hold(f: &dyn Fixture) {
    let bus = f.bus().await;
    let mut sub = subscribe(&*bus, "end.items", None).await;
    for i in 0..3 {
        publish(&*bus, "end.items", i.to_string()).await;
    }
    barrier(&*bus).await;
    within!(bus.close()).expect("close drains");
    let rest: Vec<_> = within!(sub.by_ref().collect::<Vec<_>>());
    let payloads: Vec<_> = rest.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(payloads, ["0", "1", "2"]);
}

async fn operations_after_close_fail_with_closed(f: &dyn Fixture) {
    let bus = f.bus().await;
    within!(bus.close()).expect("close");
    assert_eq!(bus.state(), BusState::Closed);

    let err = within!(bus.publish("after.close", "x".into())).expect_err("publish after close");
    assert!(
        matches!(&err, PublishError::Closed { subject } if subject == "after.close"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "cannot publish to 'after.close': the bus is closed"
    );

    let err = within!(bus.subscribe("after.close", None)).expect_err("subscribe after close");
    assert!(matches!(err, SubscribeError::Closed { .. }), "{err:?}");

    let err =
        within!(bus.request("after.close", Bytes::new(), STEP)).expect_err("request after close");
    assert_eq!(err.kind(), RequestErrorKind::Closed, "{err}");

    within!(bus.flush()).expect_err("flush after close");
    within!(bus.close()).expect("closing twice is a no-op");
}

async fn invalid_subjects_are_rejected_naming_the_subject(f: &dyn Fixture) {
    let bus = f.bus().await;
    let err = within!(bus.publish("a..b", Bytes::new())).expect_err("empty token");
    assert!(
        matches!(&err, PublishError::InvalidSubject(SubjectError::EmptyToken { subject }) if subject == "a..b"),
        "{err:?}"
    );
    let err = within!(bus.publish("a.*", Bytes::new())).expect_err("wildcard in publish");
    assert!(err.to_string().contains("'a.*'"), "{err}");
    let err = within!(bus.publish_with_reply("a", "b c", Bytes::new())).expect_err("bad reply");
    assert!(err.to_string().contains("'b c'"), "{err}");

    let err = within!(bus.subscribe("a.>.b", None)).expect_err("'>' not last");
    assert!(matches!(err, SubscribeError::InvalidSubject(_)), "{err:?}");
    assert!(err.to_string().contains("'a.>.b'"), "{err}");
    let err = within!(bus.subscribe("a", Some("two words"))).expect_err("bad queue group");
    assert!(err.to_string().contains("'two words'"), "{err}");

    let err = within!(bus.request("bad subject", Bytes::new(), STEP)).expect_err("bad request");
    assert_eq!(err.kind(), RequestErrorKind::InvalidSubject, "{err}");
    assert!(err.to_string().contains("'bad subject'"), "{err}");
}

async fn state_is_connected_while_open(f: &dyn Fixture) {
    let bus = f.bus().await;
    assert_eq!(bus.state(), BusState::Connected);
    within!(bus.flush()).expect("flush while connected");
}
