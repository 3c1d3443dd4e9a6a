//! Feature flags through the client: local first, `$feature_flag_called` events and their
//! de-duplication, flag properties on events, the `/flags` request and retry policy, and the
//! event of a remote answer, as PostHog's SDKs do them (posthog-python `client.py`:
//! `_get_feature_flag_result_with_context`, `_capture_feature_flag_called`, `_capture`;
//! posthog-node `client.ts`: `_getFeatureFlagResult`; `/flags` retries only on transport errors,
//! 502 and 504, after 300 ms then doubling, as posthog-python `request.py`, `flags`).

use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config, FlagsAttempt, FlagsRetry};
use posthog_embedded::flags::remote::{FlagErrorKind, FlagErrors, RemoteFlags, RemoteStorage};
use posthog_embedded::flags::{EvalContext, FlagValue, GroupContext, Inconclusive, PropertyValue};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Duration, Instant, Now};
use serde_json::{json, Value};

type Res = Resources<8192, 8, 128, 4096, 16>;
type C = Client<'static>;

const DEFS: &[u8] = br#"{"flags":[
  {"id":11,"key":"beta-ui","version":3,"active":true,"has_experiment":false,
   "filters":{"groups":[{"properties":[{"key":"plan","value":"pro","type":"person"}],"rollout_percentage":100}],
              "payloads":{"true":"{\"color\":\"blue\"}"}}},
  {"id":12,"key":"theme","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100,"variant":"dark"}],
   "multivariate":{"variants":[{"key":"light","rollout_percentage":50},{"key":"dark","rollout_percentage":50}]}}},
  {"id":13,"key":"off","active":false,"filters":{"groups":[]}},
  {"id":14,"key":"static-cohort","active":true,"filters":{"groups":[{"properties":[{"key":"id","type":"cohort","value":99}]}]}}
],"minimal_flag_called_events":true}"#;

fn now() -> Now {
    Now::mono(Instant::from_millis(1000))
}

/// A client over leaked resources (one per test), with `DEFS` loaded.
fn client() -> C {
    let mut c = Client::new(
        Config::new("phc_token", 0x5eed),
        Box::leak(Box::new(Res::new())),
    )
    .unwrap();
    c.load_definitions(DEFS).unwrap();
    c
}

/// The queued events, as JSON.
fn events(c: &Client<'_>) -> Vec<Value> {
    c.queue()
        .iter()
        .map(|r| {
            let mut text = r.json.to_vec();
            text.push(b'}');
            serde_json::from_slice(&text).unwrap()
        })
        .collect()
}

#[test]
fn local_reads_send_one_deduplicated_event() {
    let mut c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: Some("dev-9"),
        person: &person,
        groups: &[],
    };
    assert_eq!(
        c.feature_flag(now(), "beta-ui", &ctx, true),
        Ok(FlagValue::Bool(true))
    );
    assert_eq!(c.is_feature_enabled(now(), "beta-ui", &ctx, true), Ok(true));
    let ev = events(&c);
    assert_eq!(ev.len(), 1, "the same read twice sends one event");
    let p = &ev[0]["properties"];
    assert_eq!(ev[0]["event"], "$feature_flag_called");
    assert_eq!(ev[0]["distinct_id"], "user-1");
    assert_eq!(p["$feature_flag"], "beta-ui");
    assert_eq!(p["$feature_flag_response"], true);
    assert_eq!(p["locally_evaluated"], true);
    assert_eq!(p["$feature_flag_id"], 11);
    assert_eq!(p["$feature_flag_version"], 3);
    assert_eq!(p["$feature_flag_reason"], "Evaluated locally");
    assert_eq!(p["$feature_flag_has_experiment"], false);
    assert_eq!(p["$device_id"], "dev-9");
    // The server asked for minimal events and the flag has no experiment: no $feature/ key
    // and no payload.
    assert!(p.get("$feature/beta-ui").is_none());
    assert!(p.get("$feature_flag_payload").is_none());

    // Another value, or other groups, is another event.
    let other = [("plan", PropertyValue::Str("free"))];
    let ctx2 = EvalContext {
        person: &other,
        ..ctx
    };
    assert_eq!(
        c.feature_flag(now(), "beta-ui", &ctx2, true),
        Ok(FlagValue::Bool(false))
    );
    let groups = [GroupContext {
        group_type: "company",
        key: "acme",
        properties: None,
    }];
    let ctx3 = EvalContext {
        groups: &groups,
        ..ctx
    };
    c.feature_flag(now(), "beta-ui", &ctx3, true).unwrap();
    let ev = events(&c);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[1]["properties"]["$feature_flag_response"], false);
    assert_eq!(ev[2]["properties"]["$groups"], json!({"company": "acme"}));

    // Full events for flags with an experiment or unknown status.
    c.feature_flag(now(), "theme", &ctx, true).unwrap();
    let ev = events(&c);
    let p = &ev[3]["properties"];
    assert_eq!(p["$feature_flag_response"], "dark");
    assert_eq!(p["$feature/theme"], "dark");

    // Payload reads send nothing; send_event = false sends nothing.
    let n = c.pending();
    assert_eq!(
        c.feature_flag_payload(now(), "beta-ui", &ctx),
        Ok(Some(r#"{"color":"blue"}"#))
    );
    c.feature_flag(now(), "off", &ctx, false).unwrap();
    assert_eq!(c.pending(), n);

    // Inconclusive: no event, the driver asks the server.
    assert_eq!(
        c.feature_flag(now(), "static-cohort", &ctx, true),
        Err(Inconclusive::RequiresServer)
    );
    assert_eq!(
        c.feature_flag(now(), "unknown", &ctx, true),
        Err(Inconclusive::UnknownFlag)
    );
    assert_eq!(c.pending(), n);
}

#[test]
fn opted_out_reads_still_answer_but_send_nothing_and_shutdown_clears_the_tracker() {
    let mut c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: None,
        person: &person,
        groups: &[],
    };
    c.opt_out();
    assert_eq!(
        c.feature_flag(now(), "beta-ui", &ctx, true),
        Ok(FlagValue::Bool(true))
    );
    assert_eq!(c.pending(), 0);
    c.opt_in();
    c.feature_flag(now(), "beta-ui", &ctx, true).unwrap();
    assert_eq!(c.pending(), 1);
}

#[test]
fn flags_request_body_matches_posthog_node() {
    let c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let company = [("employees", PropertyValue::Int(42))];
    let groups = [GroupContext {
        group_type: "company",
        key: "company-456",
        properties: Some(&company),
    }];
    let ctx = EvalContext {
        distinct_id: "user-123",
        device_id: None,
        person: &person,
        groups: &groups,
    };
    let mut buf = [0u8; 1024];
    let n = c
        .flags_request(&ctx, Some(&["checkout-redesign"]), &mut buf)
        .unwrap();
    let body: Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(
        body,
        json!({
            "token": "phc_token", "distinct_id": "user-123",
            "groups": {"company": "company-456"},
            "person_properties": {"plan": "pro"},
            "group_properties": {"company": {"$group_key": "company-456", "employees": 42}},
            "geoip_disable": true, "flag_keys_to_evaluate": ["checkout-redesign"]
        })
    );
    // Too small a buffer is an error with the size needed.
    assert!(c.flags_request(&ctx, None, &mut buf[..10]).is_err());
}

#[test]
fn flags_retry_policy() {
    let mut r = FlagsRetry::default();
    assert_eq!(
        r.next_delay(FlagsAttempt::Transport),
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        r.next_delay(FlagsAttempt::Status(502)),
        None,
        "one retry by default"
    );
    let mut r = FlagsRetry::new(2);
    assert_eq!(
        r.next_delay(FlagsAttempt::Status(504)),
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        r.next_delay(FlagsAttempt::Transport),
        Some(Duration::from_millis(600))
    );
    assert_eq!(r.next_delay(FlagsAttempt::Transport), None);
    for status in [200, 408, 429, 500, 503, 400] {
        assert_eq!(
            FlagsRetry::new(3).next_delay(FlagsAttempt::Status(status)),
            None,
            "{status}"
        );
    }
    assert_eq!(FlagsRetry::new(3).next_delay(FlagsAttempt::Refused), None);
    assert_eq!(FlagsRetry::new(0).next_delay(FlagsAttempt::Transport), None);
    assert_eq!(
        FlagsRetry::error_kind(FlagsAttempt::Status(500)),
        FlagErrorKind::ApiError(500)
    );
}

#[test]
fn remote_answers_and_failures_are_reported() {
    let mut c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: None,
        person: &person,
        groups: &[],
    };
    let mut storage = Box::new(RemoteStorage::<8, 1024>::new());
    let mut remote = RemoteFlags::new(&mut storage);
    remote
        .parse(
            br#"{"flags":{"static-cohort":{"key":"static-cohort","enabled":true,"variant":"b",
            "reason":{"code":"condition_match","description":"Matched condition set 1"},
            "metadata":{"id":14,"version":2,"payload":"{\"x\":1}"}}},
            "errorsWhileComputingFlags":true,"requestId":"req-1"}"#,
        )
        .unwrap();
    let v = c.remote_flag_called(now(), "static-cohort", &ctx, &remote, true);
    assert_eq!(v, Some(FlagValue::variant("b").unwrap()));
    let missing = c.remote_flag_called(now(), "nope", &ctx, &remote, true);
    assert_eq!(missing, None);
    c.failed_flag_called(
        now(),
        "beta-ui",
        &ctx,
        FlagErrors::from(FlagErrorKind::Timeout),
        true,
    );
    let ev = events(&c);
    assert_eq!(ev.len(), 3);
    let p = &ev[0]["properties"];
    assert_eq!(p["locally_evaluated"], false);
    assert_eq!(p["$feature_flag_response"], "b");
    assert_eq!(p["$feature_flag_payload"], json!({"x": 1}));
    assert_eq!(p["$feature_flag_reason"], "Matched condition set 1");
    assert_eq!(p["$feature_flag_request_id"], "req-1");
    assert_eq!(p["$feature_flag_error"], "errors_while_computing_flags");
    let p = &ev[1]["properties"];
    assert_eq!(p["$feature_flag_response"], Value::Null);
    assert_eq!(
        p["$feature_flag_error"],
        "errors_while_computing_flags,flag_missing"
    );
    assert_eq!(ev[2]["properties"]["$feature_flag_error"], "timeout");
}

#[test]
fn capture_with_flags_attaches_flag_properties_and_caller_wins() {
    let mut c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: None,
        person: &person,
        groups: &[],
    };
    c.capture_with_flags(now(), "purchase", &ctx, &EventOptions::new(), |p| {
        p.prop("$feature/theme", "caller")?;
        Ok(())
    })
    .unwrap();
    let ev = events(&c);
    assert_eq!(ev.len(), 1, "no $feature_flag_called from attaching flags");
    let p = &ev[0]["properties"];
    assert_eq!(p["$feature/beta-ui"], true);
    assert_eq!(p["$feature/off"], false);
    assert_eq!(p["$feature/theme"], "caller", "the caller's value wins");
    assert_eq!(p["$active_feature_flags"], json!(["beta-ui", "theme"]));
    assert!(
        p.get("$feature/static-cohort").is_none(),
        "inconclusive flags are left out"
    );
}

#[test]
fn flags_request_takes_a_per_call_geoip_setting() {
    let c = client();
    let person = [("plan", PropertyValue::Str("pro"))];
    let ctx = EvalContext {
        distinct_id: "u",
        device_id: None,
        person: &person,
        groups: &[],
    };
    let mut buf = [0u8; 512];
    let n = c
        .flags_request_with(&ctx, None, Some(false), &mut buf)
        .unwrap();
    let body: Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(body["geoip_disable"], false);
    let n = c.flags_request(&ctx, None, &mut buf).unwrap();
    let body: Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(body["geoip_disable"], true, "the configured default");
}

/// A group passed without properties is prepared as PostHog's SDKs prepare it (posthog-python
/// `_add_local_person_and_group_properties`): its `$group_key` is there, so a group flag that
/// only rolls out, or filters on `$group_key`, is decided on the device; a filter on any other
/// of its properties stays inconclusive. The evaluator alone (`FlagStore::evaluate`) still
/// reads `None` as "nothing known", as posthog-python's evaluator does.
#[test]
fn a_group_without_properties_still_has_its_group_key() {
    const GROUP_DEFS: &[u8] = br#"{"flags":[
      {"id":1,"key":"fleet-rollout","active":true,"filters":{"aggregation_group_type_index":0,
       "groups":[{"properties":[],"rollout_percentage":100}]}},
      {"id":2,"key":"fleet-key","active":true,"filters":{"aggregation_group_type_index":0,
       "groups":[{"properties":[{"key":"$group_key","type":"group","group_type_index":0,
         "operator":"exact","value":["fleet-7"]}],"rollout_percentage":100}]}},
      {"id":3,"key":"fleet-plan","active":true,"filters":{"aggregation_group_type_index":0,
       "groups":[{"properties":[{"key":"plan","type":"group","group_type_index":0,
         "operator":"exact","value":["pro"]}],"rollout_percentage":100}]}}
    ],"group_type_mapping":{"0":"fleet"}}"#;
    let mut res = Box::new(Res::new());
    let mut c = Client::new(Config::new("phc_token", 0x5eed), &mut res).unwrap();
    c.load_definitions(GROUP_DEFS).unwrap();
    let groups = [GroupContext {
        group_type: "fleet",
        key: "fleet-7",
        properties: None,
    }];
    let ctx = EvalContext {
        distinct_id: "device-42",
        device_id: None,
        person: &[],
        groups: &groups,
    };
    assert_eq!(
        c.feature_flag(now(), "fleet-rollout", &ctx, false),
        Ok(FlagValue::Bool(true))
    );
    assert_eq!(
        c.feature_flag(now(), "fleet-key", &ctx, false),
        Ok(FlagValue::Bool(true))
    );
    assert!(c.feature_flag(now(), "fleet-plan", &ctx, false).is_err());
    assert_eq!(
        c.feature_flag_payload(now(), "fleet-rollout", &ctx),
        Ok(None)
    );
    // The evaluator below the SDK layer: nothing is known about the group.
    assert!(c.flags().evaluate("fleet-rollout", &ctx, None).is_err());
    // Flag properties on an ordinary event are evaluated the same way.
    c.capture_with_flags(now(), "boot", &ctx, &EventOptions::new(), |_| Ok(()))
        .unwrap();
    let ev = events(&c);
    assert_eq!(ev[0]["properties"]["$feature/fleet-rollout"], true);
    assert_eq!(ev[0]["properties"]["$feature/fleet-key"], true);
    assert!(ev[0]["properties"].get("$feature/fleet-plan").is_none());
}

/// The sans-IO `/flags` query: sent by `poll_transmit` ahead of a due batch, retried after
/// 300 ms on a 502 (the delay through `poll_timeout`, batches going meanwhile), answered
/// through `handle_response`, then read with its `$feature_flag_called` event. One query at a
/// time.
mod query {
    use posthog_embedded::client::{
        Client, Config, QueryError, QueryStatus, ReadOptions, ReadStep, RequestKind, ResponseInfo,
        TransportError,
    };
    use posthog_embedded::flags::remote::{RemoteFlags, RemoteStorage};
    use posthog_embedded::flags::EvalContext;
    use posthog_embedded::resources::Resources;
    use posthog_embedded::{Instant, Now};
    use serde_json::Value;

    use super::events;

    fn at(ms: u64) -> Now {
        Now::mono(Instant::from_millis(ms))
    }

    fn status(s: u16) -> ResponseInfo<'static> {
        ResponseInfo {
            status: s,
            retry_after: None,
            etag: None,
        }
    }

    const CTX: EvalContext<'static> = EvalContext {
        distinct_id: "device-1",
        device_id: None,
        person: &[],
        groups: &[],
    };

    const ANSWER: &[u8] = br#"{"flags":{"remote-only":{"key":"remote-only","enabled":true,"variant":"blue","metadata":{"id":5,"payload":"{\"n\":1}"}}},"requestId":"r-1","evaluatedAt":1730000000000}"#;

    fn client() -> Client<'static> {
        let mut c = Client::new(
            Config::new("phc_token", 7).flush_at(1),
            Box::leak(Box::new(Resources::<8192, 4, 32, 1024, 16>::new())),
        )
        .unwrap();
        c.attach_remote(RemoteFlags::new(Box::leak(Box::new(RemoteStorage::<
            8,
            1024,
        >::new()))));
        c
    }

    #[test]
    fn a_query_goes_first_retries_and_answers_with_its_event() {
        let mut c = client();
        c.capture(at(0), "e", "device-1", &Default::default(), |_| Ok(()))
            .unwrap();
        let ReadStep::Remote(t) = c.begin_flag_read(at(0), "remote-only", &CTX, ReadOptions::new())
        else {
            panic!("the server must be asked");
        };
        // A second query waits for this one.
        assert_eq!(
            c.start_flags_query(&CTX, None, ReadOptions::new()),
            Err(QueryError::Busy)
        );
        let mut buf = vec![0u8; 4096];
        let tx = c.poll_transmit(at(0), &mut buf).unwrap();
        assert_eq!(tx.kind, RequestKind::Flags, "ahead of the due batch");
        assert_eq!(tx.path.as_str(), "/flags/?v=2");
        assert!(tx.headers().all(|(k, _)| k != "Authorization"));
        let body: Value = serde_json::from_slice(tx.body).unwrap();
        assert_eq!(
            body["flag_keys_to_evaluate"],
            serde_json::json!(["remote-only"])
        );
        assert_eq!(body["distinct_id"], "device-1");
        assert!(c.poll_transmit(at(0), &mut buf).is_none(), "one in flight");
        c.handle_response(at(10), &status(502), b"");
        assert_eq!(c.flags_query(t), QueryStatus::Pending);
        assert_eq!(
            c.poll_timeout(),
            Some(Instant::from_millis(0)),
            "the batch is due"
        );
        // The batch goes while the query waits out its 300 ms.
        let tx = c.poll_transmit(at(10), &mut buf).unwrap();
        assert!(matches!(tx.kind, RequestKind::Batch { .. }));
        c.handle_response(at(20), &status(200), b"");
        assert_eq!(c.poll_timeout(), Some(Instant::from_millis(310)));
        assert!(c.poll_transmit(at(309), &mut buf).is_none());
        let tx = c.poll_transmit(at(310), &mut buf).unwrap();
        assert_eq!(tx.kind, RequestKind::Flags);
        c.handle_response(at(320), &status(200), ANSWER);
        assert_eq!(c.flags_query(t), QueryStatus::Answered);
        let r = c
            .finish_flag_read(at(320), t, "remote-only", &CTX, true)
            .unwrap();
        assert_eq!(
            (r.key, r.variant(), r.payload),
            ("remote-only", Some("blue"), Some(r#"{"n":1}"#))
        );
        assert_eq!(c.flags_query(t), QueryStatus::Unknown, "closed");
        let ev = events(&c);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["event"], "$feature_flag_called");
        assert_eq!(ev[0]["properties"]["$feature_flag_response"], "blue");
        assert_eq!(ev[0]["properties"]["$feature_flag_request_id"], "r-1");
        assert_eq!(
            ev[0]["properties"]["$feature_flag_evaluated_at"],
            1_730_000_000_000u64
        );
        assert_eq!(ev[0]["properties"]["locally_evaluated"], false);
    }

    #[test]
    fn failures_are_reported_on_the_event() {
        /// How an attempt fails, the error reported, and the attempts made.
        type Case<'a> = (&'a dyn Fn(&mut Client<'static>), &'a str, usize);
        let cases: [Case<'_>; 4] = [
            // A refused connection is not retried.
            (
                &|c| c.handle_transport_error(at(1), TransportError::Refused),
                "connection_error",
                1,
            ),
            // A 500 is not retried.
            (
                &|c| c.handle_response(at(1), &status(500), b""),
                "api_error_500",
                1,
            ),
            // A timeout is retried once, then reported.
            (
                &|c| c.handle_transport_error(at(1), TransportError::Timeout),
                "timeout",
                2,
            ),
            // An unusable answer.
            (
                &|c| c.handle_response(at(1), &status(200), b"{nope"),
                "unknown_error",
                1,
            ),
        ];
        for (fail, error, attempts) in cases {
            let mut c = client();
            let ReadStep::Remote(t) =
                c.begin_flag_read(at(0), "remote-only", &CTX, ReadOptions::new())
            else {
                panic!("asked");
            };
            let mut buf = vec![0u8; 4096];
            let mut sent = 0;
            let mut ms = 0;
            while c.flags_query(t) == QueryStatus::Pending {
                ms = c.poll_timeout().unwrap().as_millis().max(ms);
                let tx = c.poll_transmit(at(ms), &mut buf).unwrap();
                assert_eq!(tx.kind, RequestKind::Flags);
                sent += 1;
                fail(&mut c);
            }
            assert_eq!(sent, attempts, "{error}");
            assert!(c
                .finish_flag_read(at(ms), t, "remote-only", &CTX, true)
                .is_none());
            let ev = events(&c);
            assert_eq!(ev[0]["properties"]["$feature_flag_error"], error);
            assert_eq!(ev[0]["properties"]["$feature_flag_response"], Value::Null);
        }
    }

    #[test]
    fn offline_and_shutdown_end_an_open_query() {
        // Offline while waiting: ends with connection_error, nothing sent.
        let mut c = client();
        let ReadStep::Remote(t) = c.begin_flag_read(at(0), "remote-only", &CTX, ReadOptions::new())
        else {
            panic!("asked");
        };
        c.set_online(false);
        let mut buf = vec![0u8; 4096];
        assert!(c.poll_transmit(at(0), &mut buf).is_none());
        assert!(c
            .finish_flag_read(at(0), t, "remote-only", &CTX, true)
            .is_none());
        assert_eq!(
            events(&c)[0]["properties"]["$feature_flag_error"],
            "connection_error"
        );
        // Offline from the start: no query, the read is reported at once.
        assert_eq!(
            c.begin_flag_read(at(0), "other", &CTX, ReadOptions::new()),
            ReadStep::Nothing
        );
        assert_eq!(events(&c).len(), 2);
        c.set_online(true);
        // Shutdown during the retry delay: no retry, no event.
        let mut c = client();
        let ReadStep::Remote(t) = c.begin_flag_read(at(0), "remote-only", &CTX, ReadOptions::new())
        else {
            panic!("asked");
        };
        let _ = c.poll_transmit(at(0), &mut buf).unwrap();
        c.handle_response(at(1), &status(502), b"");
        c.shutdown();
        assert!(
            c.poll_transmit(at(400), &mut buf).is_none(),
            "no retry after shutdown"
        );
        assert!(c
            .finish_flag_read(at(400), t, "remote-only", &CTX, true)
            .is_none());
        assert!(events(&c).is_empty());
        // Without storage, an inconclusive read has no value (reported as unknown_error).
        let mut c = Client::new(
            Config::new("phc_token", 7),
            Box::leak(Box::new(Resources::<4096, 1, 4, 64, 4>::new())),
        )
        .unwrap();
        assert_eq!(
            c.begin_flag_read(at(0), "remote-only", &CTX, ReadOptions::new()),
            ReadStep::Nothing
        );
        assert_eq!(
            events(&c)[0]["properties"]["$feature_flag_error"],
            "unknown_error"
        );
    }

    #[test]
    fn an_abandoned_query_in_flight_discards_its_answer() {
        let mut c = client();
        let t = c.start_flags_query(&CTX, None, ReadOptions::new()).unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = c.poll_transmit(at(0), &mut buf).unwrap();
        c.close_flags_query(t);
        assert!(c.is_query_open(), "until its answer arrives");
        c.handle_response(at(1), &status(200), ANSWER);
        assert!(!c.is_query_open());
        assert!(c.start_flags_query(&CTX, None, ReadOptions::new()).is_ok());
    }
}

/// PostHog's `evaluate_flags` snapshot (contract "Evaluate Flags"), on the sans-IO core.
mod snapshot {
    use posthog_embedded::client::{
        Client, Config, FlagSnapshot, ReadOptions, RequestKind, ResponseInfo, SnapshotError,
        SnapshotStep, SnapshotStorage,
    };
    use posthog_embedded::flags::remote::{RemoteFlags, RemoteStorage};
    use posthog_embedded::flags::{EvalContext, FlagValue};
    use posthog_embedded::resources::Resources;
    use posthog_embedded::{Instant, Now};
    use serde_json::Value;

    use super::events;

    const NOW: Now = Now::mono(Instant::from_millis(5));

    const CTX: EvalContext<'static> = EvalContext {
        distinct_id: "user-123",
        device_id: None,
        person: &[],
        groups: &[],
    };

    const REMOTE: &[u8] = br#"{"flags":{
        "beta-ui":{"key":"beta-ui","enabled":true,"metadata":{"id":1}},
        "checkout":{"key":"checkout","enabled":true,"variant":"blue","metadata":{"id":2,"payload":"{\"copy\":\"new\"}"}},
        "disabled":{"key":"disabled","enabled":false},
        "search":{"key":"search","enabled":true}},"requestId":"req-9"}"#;

    const LOCAL: &[u8] = br#"{"flags":[
        {"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
        {"id":3,"key":"search","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
        {"id":4,"key":"needs-server","active":true,"filters":{"groups":[{"properties":[{"key":"plan","value":"pro","type":"person"}],"rollout_percentage":100}]}}]}"#;

    fn client() -> Client<'static> {
        let mut c = Client::new(
            Config::new("phc_token", 1).flush_at(100),
            Box::leak(Box::new(Resources::<16384, 8, 64, 2048, 32>::new())),
        )
        .unwrap();
        c.attach_remote(RemoteFlags::new(Box::leak(Box::new(RemoteStorage::<
            16,
            2048,
        >::new()))));
        c
    }

    fn storage() -> &'static mut SnapshotStorage<16, 1024> {
        Box::leak(Box::new(SnapshotStorage::new()))
    }

    /// Evaluates, answering the query (if any) with `answer` (`None`: a 500). Returns the
    /// `/flags` bodies sent.
    fn evaluate(
        c: &mut Client<'static>,
        keys: Option<&[&str]>,
        opts: ReadOptions,
        answer: Option<&[u8]>,
        snap: &mut FlagSnapshot<'_>,
    ) -> Vec<Value> {
        let mut sent = Vec::new();
        if let SnapshotStep::Remote(t) = c.evaluate_flags(NOW, &CTX, keys, opts, snap).unwrap() {
            let mut buf = vec![0u8; 8192];
            let tx = c.poll_transmit(NOW, &mut buf).unwrap();
            assert_eq!(tx.kind, RequestKind::Flags);
            sent.push(serde_json::from_slice(tx.body).unwrap());
            let status = if answer.is_some() { 200 } else { 500 };
            let info = ResponseInfo {
                status,
                retry_after: None,
                etag: None,
            };
            c.handle_response(NOW, &info, answer.unwrap_or_default());
            c.complete_snapshot(t, keys, snap).unwrap();
        }
        sent
    }

    fn called(c: &Client<'_>) -> Vec<(String, Value)> {
        events(c)
            .into_iter()
            .filter(|e| e["event"] == "$feature_flag_called")
            .map(|e| {
                (
                    e["properties"]["$feature_flag"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    e["properties"]["$feature_flag_response"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn one_request_lazy_deduplicated_exposure_and_silent_reads() {
        let mut c = client();
        let mut snap = FlagSnapshot::new(storage());
        let sent = evaluate(&mut c, None, ReadOptions::new(), Some(REMOTE), &mut snap);
        assert_eq!(sent.len(), 1, "no definitions: one request");
        assert!(called(&c).is_empty(), "no exposure at evaluation");
        assert!(c.snapshot_enabled(NOW, &mut snap, "beta-ui", false));
        assert_eq!(
            c.snapshot_flag(NOW, &mut snap, "checkout"),
            Some(FlagValue::variant("blue").unwrap())
        );
        assert!(c.snapshot_enabled(NOW, &mut snap, "beta-ui", false));
        assert!(
            !c.snapshot_enabled(NOW, &mut snap, "disabled", true),
            "a value beats the default"
        );
        assert_eq!(
            c.snapshot_flag(NOW, &mut snap, "disabled"),
            Some(FlagValue::Bool(false))
        );
        // Missing: false (or the default), `None`, reported as flag_missing.
        assert!(!c.snapshot_enabled(NOW, &mut snap, "missing", false));
        assert_eq!(c.snapshot_flag(NOW, &mut snap, "missing"), None);
        let ev = called(&c);
        assert_eq!(
            ev.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["beta-ui", "checkout", "disabled", "missing"],
            "one exposure per flag, de-duplicated"
        );
        let missing = events(&c)
            .into_iter()
            .find(|e| e["properties"]["$feature_flag"] == "missing")
            .unwrap();
        assert_eq!(missing["properties"]["$feature_flag_error"], "flag_missing");
        let checkout = events(&c)
            .into_iter()
            .find(|e| e["properties"]["$feature_flag"] == "checkout")
            .unwrap();
        assert_eq!(checkout["properties"]["$feature_flag_request_id"], "req-9");
        assert_eq!(checkout["properties"]["locally_evaluated"], false);
        // Payload and key reads are silent and are no access.
        let before = events(&c).len();
        assert_eq!(snap.payload("checkout"), Some(r#"{"copy":"new"}"#));
        let mut keys: Vec<&str> = snap.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["beta-ui", "checkout", "disabled", "search"]);
        assert_eq!(events(&c).len(), before);
        // Reading never asks again.
        let mut buf = vec![0u8; 4096];
        assert!(c.poll_transmit(NOW, &mut buf).is_none());
    }

    #[test]
    fn filters_and_capture_without_requests() {
        let mut c = client();
        let mut snap = FlagSnapshot::new(storage());
        evaluate(&mut c, None, ReadOptions::new(), Some(REMOTE), &mut snap);
        let mut accessed = FlagSnapshot::new(storage());
        snap.only_accessed(&mut accessed).unwrap();
        assert!(accessed.is_empty(), "before any read: empty, never all");
        let _ = snap.payload("checkout");
        snap.only_accessed(&mut accessed).unwrap();
        assert!(accessed.is_empty(), "payload reads do not count");
        c.snapshot_enabled(NOW, &mut snap, "beta-ui", false);
        c.snapshot_flag(NOW, &mut snap, "search");
        snap.only_accessed(&mut accessed).unwrap();
        let mut k: Vec<&str> = accessed.keys().collect();
        k.sort_unstable();
        assert_eq!(k, ["beta-ui", "search"]);
        let mut only = FlagSnapshot::new(storage());
        snap.only(&["beta-ui", "missing"], &mut only).unwrap();
        assert_eq!(only.keys().collect::<Vec<_>>(), ["beta-ui"]);
        // Accesses on a filtered snapshot do not mark the parent.
        snap.only(&["checkout"], &mut only).unwrap();
        c.snapshot_flag(NOW, &mut only, "checkout");
        snap.only_accessed(&mut accessed).unwrap();
        assert!(
            accessed.get("checkout").is_none(),
            "the parent is not marked"
        );
        // Capture with the snapshot: $feature/* and $active_feature_flags, no request.
        c.capture_with_snapshot(
            NOW,
            "checkout done",
            "user-123",
            &Default::default(),
            &snap,
            |_| Ok(()),
        )
        .unwrap();
        let e = events(&c)
            .into_iter()
            .find(|e| e["event"] == "checkout done")
            .unwrap();
        let p = &e["properties"];
        assert_eq!(p["$feature/beta-ui"], true);
        assert_eq!(p["$feature/checkout"], "blue");
        assert_eq!(p["$feature/disabled"], false);
        let active = p["$active_feature_flags"].as_array().unwrap();
        assert!(
            active.contains(&Value::from("checkout")) && !active.contains(&Value::from("disabled"))
        );
        let mut buf = vec![0u8; 16384];
        let tx = c.poll_transmit(NOW, &mut buf);
        assert!(tx.is_none(), "flush_at not reached, and no /flags");
        // Too small a target: a typed error naming the need.
        let mut tiny_storage = SnapshotStorage::<1, 8>::new();
        let mut tiny = FlagSnapshot::new(&mut tiny_storage);
        assert!(matches!(
            snap.only(&["beta-ui", "checkout"], &mut tiny),
            Err(SnapshotError::Full { flags: 2, .. })
        ));
    }

    #[test]
    fn keys_scope_the_request_and_local_values_win() {
        let mut c = client();
        c.load_definitions(LOCAL).unwrap();
        // Everything requested is local: no request, and other local flags are left out.
        let mut snap = FlagSnapshot::new(storage());
        let sent = evaluate(
            &mut c,
            Some(&["beta-ui", "search"]),
            ReadOptions::new(),
            Some(REMOTE),
            &mut snap,
        );
        assert!(sent.is_empty());
        let mut k: Vec<&str> = snap.keys().collect();
        k.sort_unstable();
        assert_eq!(k, ["beta-ui", "search"]);
        // `checkout` has no local definition: one request with the original keys; beta-ui
        // keeps its local value although the server says otherwise.
        const DISAGREE: &[u8] = br#"{"flags":{"beta-ui":{"key":"beta-ui","enabled":false},"checkout":{"key":"checkout","enabled":true,"variant":"blue"}}}"#;
        let sent = evaluate(
            &mut c,
            Some(&["beta-ui", "checkout"]),
            ReadOptions::new(),
            Some(DISAGREE),
            &mut snap,
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0]["flag_keys_to_evaluate"],
            serde_json::json!(["beta-ui", "checkout"])
        );
        let b = snap.get("beta-ui").unwrap();
        assert_eq!(
            (b.value, b.locally_evaluated),
            (FlagValue::Bool(true), true)
        );
        assert_eq!(
            snap.get("checkout").unwrap().value,
            FlagValue::variant("blue").unwrap()
        );
        assert!(snap.get("search").is_none(), "not requested");
        // Local only: the unresolvable flag is absent, nobody asked.
        let mut ro = ReadOptions::new();
        ro.only_local = true;
        let sent = evaluate(
            &mut c,
            Some(&["beta-ui", "checkout"]),
            ro,
            Some(REMOTE),
            &mut snap,
        );
        assert!(sent.is_empty());
        assert!(snap.get("beta-ui").is_some() && snap.get("checkout").is_none());
        // The server fails: local values kept, the error recorded; reading does not retry.
        let sent = evaluate(
            &mut c,
            Some(&["beta-ui", "checkout"]),
            ReadOptions::new(),
            None,
            &mut snap,
        );
        assert_eq!(sent.len(), 1);
        assert!(snap.get("beta-ui").is_some() && snap.get("checkout").is_none());
        assert!(!snap.error().is_empty());
        let mut buf = vec![0u8; 4096];
        c.snapshot_flag(NOW, &mut snap, "checkout");
        assert!(c
            .poll_transmit(Now::mono(Instant::from_millis(10_000)), &mut buf)
            .is_none());
    }

    #[test]
    fn no_distinct_id_means_an_empty_silent_snapshot() {
        let mut c = client();
        let mut snap = FlagSnapshot::new(storage());
        let blank = EvalContext {
            distinct_id: " ",
            ..CTX
        };
        assert_eq!(
            c.evaluate_flags(NOW, &blank, None, ReadOptions::new(), &mut snap),
            Ok(SnapshotStep::Done),
            "no request"
        );
        assert!(snap.is_empty());
        assert!(!c.snapshot_enabled(NOW, &mut snap, "beta-ui", false));
        assert!(events(&c).is_empty(), "no exposure");
    }

    #[test]
    fn opted_out_still_evaluates_and_local_exposures_carry_no_request_error() {
        let mut c = client();
        c.load_definitions(LOCAL).unwrap();
        // Opting out gates events, not flags.
        c.opt_out();
        let mut snap = FlagSnapshot::new(storage());
        evaluate(
            &mut c,
            Some(&["beta-ui"]),
            ReadOptions::new(),
            None,
            &mut snap,
        );
        assert!(snap.get("beta-ui").is_some());
        assert!(c.snapshot_enabled(NOW, &mut snap, "beta-ui", false));
        assert!(events(&c).is_empty(), "the gate drops the exposure");
        c.opt_in();
        // The server fails: the local flag's exposure is not blamed for it.
        let sent = evaluate(
            &mut c,
            Some(&["beta-ui", "checkout"]),
            ReadOptions::new(),
            None,
            &mut snap,
        );
        assert_eq!(sent.len(), 1);
        assert!(!snap.error().is_empty());
        assert!(c.snapshot_enabled(NOW, &mut snap, "beta-ui", false));
        let ev = events(&c);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["properties"]["locally_evaluated"], true);
        assert!(ev[0]["properties"].get("$feature_flag_error").is_none());
        // A key the server should have answered reports the failure with flag_missing.
        assert_eq!(c.snapshot_flag(NOW, &mut snap, "checkout"), None);
        let ev = events(&c);
        let err = ev[1]["properties"]["$feature_flag_error"].as_str().unwrap();
        assert!(
            err.contains("flag_missing") && err.contains("api_error_500"),
            "{err}"
        );
    }
}

#[test]
fn a_variant_too_long_for_a_flag_value_is_never_cut_locally_or_remotely() {
    let long = "l".repeat(posthog_embedded::flags::MAX_VARIANT_LEN + 1);
    let defs = format!(
        r#"{{"flags":[
        {{"id":1,"key":"long","active":true,"filters":{{"groups":[{{"properties":[],"rollout_percentage":100}}],
          "multivariate":{{"variants":[{{"key":"{long}","rollout_percentage":100}}]}}}}}},
        {{"id":2,"key":"on","active":true,"filters":{{"groups":[{{"properties":[],"rollout_percentage":100}}]}}}}]}}"#
    );
    let mut c = client();
    c.load_definitions(defs.as_bytes()).unwrap();
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: None,
        person: &[],
        groups: &[],
    };
    // Locally: inconclusive, so left off an event's flags (never a cut variant).
    c.capture_with_flags(now(), "tick", &ctx, &EventOptions::new(), |_| Ok(()))
        .unwrap();
    let p = &events(&c)[0]["properties"];
    assert_eq!(p["$feature/on"], true);
    assert!(p.get("$feature/long").is_none());
    assert_eq!(p["$active_feature_flags"], json!(["on"]));
    assert!(matches!(
        c.feature_flag(now(), "long", &ctx, false),
        Err(Inconclusive::Unresolved(_))
    ));
    // Remotely: no value, and the exposure event says the evaluation failed.
    let mut storage = Box::new(RemoteStorage::<8, 1024>::new());
    let mut remote = RemoteFlags::new(&mut storage);
    let answer = format!(r#"{{"flags":{{"long":{{"enabled":true,"variant":"{long}"}}}}}}"#);
    remote.parse(answer.as_bytes()).unwrap();
    assert_eq!(
        c.remote_flag_called(now(), "long", &ctx, &remote, true),
        None
    );
    let ev = events(&c);
    let p = &ev.last().unwrap()["properties"];
    assert_eq!(p["$feature_flag"], "long");
    assert_eq!(p["$feature_flag_response"], Value::Null);
    assert_eq!(p["$feature_flag_error"], "evaluation_failed");
}
