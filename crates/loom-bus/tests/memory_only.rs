//! Behaviour specific to `MemoryBus`: the slow-subscriber policy, table cleanup, and
//! subject matching checked against a reference matcher.

use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use loom_bus::{Bus, DEFAULT_SUBSCRIPTION_CAPACITY, MemoryBus, RequestErrorKind};
use proptest::prelude::*;

use crate::util::{STEP, assert_silent, next, publish, subscribe};

const QUIET: Duration = Duration::from_millis(50);

#[tokio::test]
async fn slow_subscriber_drops_and_counts_without_blocking_the_publisher() {
    let bus = MemoryBus::with_capacity(4);
    let mut slow = subscribe(&bus, "slow.x", None).await;
    let mut other = subscribe(&bus, "slow.x", None).await;
    for i in 0..10 {
        // Each publish returns at once even though `slow` reads nothing.
        within!(bus.publish("slow.x", i.to_string().into())).expect("publish never blocks");
        if i < 4 {
            assert_eq!(next(&mut other).await.payload, i.to_string());
        }
    }
    assert_eq!(slow.dropped(), Some(6));
    assert_eq!(bus.dropped_total(), 6 + 2, "`other` dropped 8 and 9 too");
    for i in 0..4 {
        assert_eq!(
            next(&mut slow).await.payload,
            i.to_string(),
            "the oldest are kept"
        );
    }
    assert_silent(&mut slow, QUIET).await;
    publish(&bus, "slow.x", "room again").await;
    assert_eq!(next(&mut slow).await.payload, "room again");
}

#[tokio::test]
async fn queue_group_skips_a_full_member_when_another_has_room() {
    let bus = MemoryBus::with_capacity(1);
    let mut a = subscribe(&bus, "q.x", Some("g")).await;
    let mut b = subscribe(&bus, "q.x", Some("g")).await;
    for i in 0..3 {
        publish(&bus, "q.x", i.to_string()).await;
    }
    // Two fit (one per member); the third finds both full and is dropped.
    assert_eq!(bus.dropped_total(), 1);
    let first = next(&mut a).await.payload;
    let second = next(&mut b).await.payload;
    let mut got = [first, second];
    got.sort();
    assert_eq!(got, [Bytes::from("0"), Bytes::from("1")]);
    assert_eq!(a.dropped().unwrap_or(0) + b.dropped().unwrap_or(0), 1);
}

#[tokio::test]
async fn default_capacity_is_the_documented_constant() {
    assert_eq!(MemoryBus::new().capacity(), DEFAULT_SUBSCRIPTION_CAPACITY);
    assert_eq!(MemoryBus::with_capacity(0).capacity(), 1);
}

#[tokio::test]
async fn unsubscribing_removes_the_table_entry() {
    let bus = MemoryBus::new();
    let a = subscribe(&bus, "t.x", None).await;
    let b = subscribe(&bus, "t.*", Some("g")).await;
    let c = subscribe(&bus, "*.x", None).await;
    let d = subscribe(&bus, "t.>", Some("g")).await;
    assert_eq!(bus.subscription_count(), 4);
    drop(a);
    drop(b);
    within!(c.unsubscribe()).expect("unsubscribe");
    assert_eq!(bus.subscription_count(), 1);
    drop(d);
    assert_eq!(bus.subscription_count(), 0);
    // The reply inbox is internal and not counted.
    let err = within!(bus.request("t.x", Bytes::new(), STEP)).expect_err("nobody listens");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders);
    assert_eq!(bus.subscription_count(), 0);
}

#[tokio::test]
async fn a_subscription_outliving_its_bus_ends() {
    let bus = MemoryBus::new();
    let mut sub = subscribe(&bus, "t.x", None).await;
    publish(&bus, "t.x", "last").await;
    drop(bus);
    assert_eq!(next(&mut sub).await.payload, "last");
    assert!(within!(sub.next()).is_none());
}

#[tokio::test]
async fn waiting_request_fails_with_closed_when_the_bus_closes() {
    let bus = MemoryBus::new();
    let mut service = subscribe(&bus, "svc.silent", None).await;
    let requester = bus.clone();
    let pending =
        tokio::spawn(async move { requester.request("svc.silent", Bytes::new(), STEP).await });
    // Once the service holds the request, the requester is waiting for the reply.
    let _request = next(&mut service).await;
    within!(bus.close()).expect("close");
    let err = within!(pending)
        .expect("request task")
        .expect_err("closed while waiting");
    assert_eq!(err.kind(), RequestErrorKind::Closed, "{err}");
}

#[tokio::test]
async fn a_late_reply_is_dropped_quietly() {
    let bus = MemoryBus::new();
    let mut service = subscribe(&bus, "svc.late", None).await;
    let err = within!(bus.request("svc.late", Bytes::new(), Duration::from_millis(10)))
        .expect_err("nobody answers in time");
    assert_eq!(err.kind(), RequestErrorKind::TimedOut);
    let request = next(&mut service).await;
    let reply = request.reply.expect("a request carries a reply subject");
    within!(bus.publish(&reply, "too late".into())).expect("a late reply is not an error");
}

/// The reference model for subject matching.
fn reference_matches(pattern: &[&str], subject: &[&str]) -> bool {
    match (pattern.split_first(), subject.split_first()) {
        (None, None) => true,
        (Some((&">", rest)), Some(_)) => rest.is_empty(),
        (Some((&"*", p)), Some((_, s))) => reference_matches(p, s),
        (Some((a, p)), Some((b, s))) => a == b && reference_matches(p, s),
        _ => false,
    }
}

fn pattern_strategy() -> impl Strategy<Value = Vec<&'static str>> {
    let token = prop_oneof![Just("a"), Just("b"), Just("c"), Just("*")];
    (prop::collection::vec(token, 1..5), any::<bool>()).prop_map(|(mut tokens, tail)| {
        if tail {
            tokens.push(">");
        }
        tokens
    })
}

fn subject_strategy() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..6)
}

proptest! {
    #[test]
    fn memory_bus_delivers_exactly_when_the_reference_matcher_matches(
        patterns in prop::collection::vec(pattern_strategy(), 1..4),
        subject in subject_strategy(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let bus = MemoryBus::new();
            let mut subs = Vec::new();
            for pattern in &patterns {
                let joined = pattern.join(".");
                let sub = within!(bus.subscribe(&joined, None)).expect("valid pattern");
                subs.push(sub);
            }
            let joined_subject = subject.join(".");
            within!(bus.publish(&joined_subject, Bytes::new())).expect("publish");
            for (pattern, sub) in patterns.iter().zip(subs.iter_mut()) {
                // Memory delivery is synchronous: a matching message is already buffered.
                let delivered = sub.next().now_or_never().flatten().is_some();
                prop_assert_eq!(
                    delivered,
                    reference_matches(pattern, &subject),
                    "pattern {} subject {}", pattern.join("."), joined_subject
                );
            }
            Ok(())
        })?;
    }
}
