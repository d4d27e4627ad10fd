//! A tiny `make loadtest`: both profiles and the optimized one with background delivery,
//! two scenarios, a few seconds each, then the cache tiers on three instances and the
//! realtime clients, on the local stack, with the debug binaries built beside this test. It
//! checks the report's shape and that the run measured something and failed nothing; it
//! asserts no time.

use std::process::Command;

use serde_json::Value;

const SCENARIO_FIELDS: [&str; 10] = [
    "name",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "aws_calls_per_request",
    "total_aws_calls_per_request",
    "capacity_units_per_request",
];

#[test]
fn a_tiny_run_reports_every_field_for_both_profiles() {
    let out = std::env::temp_dir().join(format!("brain2-loadtest-{}", uuid::Uuid::new_v4().simple()));
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut harness = Command::new(env!("CARGO_BIN_EXE_brain2-loadtest"));
    // Only loopback: whatever the caller's environment says about targets and sizes.
    for inherited in [
        "TARGET_URL",
        "TOKEN",
        "MAX_REQUESTS",
        "DELETE_BATCHES",
        "SIM_RTT_MS",
        "SIM_CACHE_RTT_MS",
        "CACHE_SECONDS",
        "CACHE_UPDATE_WEIGHT",
        "REALTIME_WRITE_INTERVAL_MS",
        "BRAIN2_BIN",
        "LAMBDA_BIN",
        "CLOUDWATCH",
    ] {
        harness.env_remove(inherited);
    }
    let run = harness
        .current_dir(&repository)
        .envs([
            ("PROFILES", "baseline,optimized,optimized-events_background"),
            ("SCENARIOS", "get_node,create_node"),
            ("DURATION", "2"),
            ("USERS", "2"),
            ("GRAPH_NODES", "20"),
            ("GRAPH_EDGES", "20"),
            ("TENANTS", "1"),
            ("TENANT_NODES", "5"),
            ("COLD_RUNS", "1"),
            ("WARM_INVOCATIONS", "20"),
            ("SETTLE_SECONDS", "3"),
            ("CACHE_INSTANCES", "3"),
            ("CACHE_SECONDS", "3"),
            ("REALTIME_CLIENTS", "3"),
            ("REALTIME_SECONDS", "3"),
            // Waited out only if a message is missing: a generous bound, not a latency.
            ("REALTIME_GRACE_SECONDS", "60"),
        ])
        .env("OUT", &out)
        .output()
        .expect("the harness runs");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the harness failed:\n{log}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for field in ["generated_at", "target", "sim_rtt_ms", "machine", "lambda_zip_bytes"] {
        assert!(!report[field].is_null(), "{field} missing: {report}");
    }
    assert_eq!(report["target"], "local");
    for field in ["min", "median", "max"] {
        assert!(report["cold_start_ms"][field].as_f64().is_some_and(|ms| ms > 0.0), "cold_start_ms.{field}: {report}");
    }
    assert!(report["lambda_zip_bytes"].as_u64().is_some_and(|bytes| bytes > 0));
    let lambda = &report["lambda"];
    assert!(lambda["binary_bytes"].as_u64().is_some_and(|bytes| bytes > lambda["zip_bytes"].as_u64().unwrap()));
    assert_eq!(lambda["cold_runs"], 1);
    for figure in ["cold_exec_to_first_next_ms", "cold_exec_to_first_response_ms"] {
        assert!(lambda[figure]["median"].as_f64().is_some_and(|ms| ms > 0.0), "lambda.{figure}: {lambda}");
    }
    let warm = &lambda["warm"];
    assert_eq!(warm["invocations"], 20, "{lambda}");
    // CPU time counts in clock ticks, which twenty quick invocations may not reach.
    assert!(warm["cpu_ms_per_invocation"].as_f64().is_some_and(|ms| ms >= 0.0), "{lambda}");
    for figure in ["p50_ms", "p99_ms", "p50_until_idle_ms"] {
        assert!(warm[figure].as_f64().is_some_and(|value| value > 0.0), "lambda.warm.{figure}: {lambda}");
    }
    assert!(warm["peak_rss_kib"].as_u64().is_some_and(|kib| kib > 1024), "{lambda}");
    let profiles = report["profiles"].as_array().unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["baseline", "optimized", "optimized-events_background"]);
    let deliveries: Vec<&str> = profiles.iter().map(|p| p["event_delivery"].as_str().unwrap()).collect();
    assert_eq!(deliveries, ["inline", "outbox", "background"]);
    for profile in profiles {
        let flags = profile["flags"].as_object().unwrap();
        let expected = profile["name"] != "baseline";
        assert_eq!(flags.len(), brain2::flags::Flags::OPTIMIZED.entries().len(), "{profile}");
        assert!(flags.values().all(|on| on.as_bool() == Some(expected)), "flags of {}: {flags:?}", profile["name"]);
        let scenarios = profile["scenarios"].as_array().unwrap();
        let names: Vec<&str> = scenarios.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["get_node", "create_node"]);
        for scenario in scenarios {
            for field in SCENARIO_FIELDS {
                assert!(!scenario[field].is_null(), "{field} missing: {scenario}");
            }
            assert!(scenario["requests"].as_u64().unwrap() > 0, "{scenario}");
            assert_eq!(scenario["errors"], 0, "{scenario}");
            assert!(scenario["aws_calls_per_request"].as_f64().unwrap() > 0.0, "{scenario}");
            assert!(scenario["total_aws_calls_per_request"].as_f64().unwrap() > 0.0, "{scenario}");
            let calls = &scenario["server_calls"];
            assert!(calls["all"].as_f64().unwrap() > 0.0, "{scenario}");
            assert!(calls["by_operation"].as_object().is_some_and(|calls| !calls.is_empty()), "{scenario}");
            // The outbox relay reads the table's stream, and only it does.
            let reads_stream = calls["stream_reading"].as_f64().unwrap() > 0.0;
            assert_eq!(reads_stream, profile["event_delivery"] == "outbox", "{scenario}");
        }
        // Reads raise no event; the seed's events reach no queue, even through the stream.
        let reads = &scenarios[0]["write_to_bus"];
        for count in ["events", "earlier_events", "whole_second_events", "discarded_before", "unreadable"] {
            assert_eq!(reads[count], 0, "get_node {count}: {reads}");
        }
        assert!(reads["p50_ms"].is_null(), "{reads}");
        let creates = &scenarios[1];
        let events = &creates["write_to_bus"];
        assert!(events["distinct_events"].as_u64().unwrap() > 0, "{creates}");
        assert!(events["events"].as_u64().unwrap() >= events["distinct_events"].as_u64().unwrap(), "{creates}");
        for figure in ["p50_ms", "p99_ms", "max_ms", "events_per_second"] {
            assert!(events[figure].as_f64().is_some(), "create_node {figure}: {creates}");
        }
        assert!(creates["server_calls"]["put_events"].as_f64().unwrap() > 0.0, "{creates}");
        assert!(profile["server_calls"]["all"].as_f64().unwrap() > 0.0, "{profile}");
        let html = out.join(profile["name"].as_str().unwrap()).join("get_node").join("report.html");
        assert!(html.is_file(), "goose's HTML report is missing at {}", html.display());
    }
    let table = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(table.contains("| get_node | optimized |") && table.contains("p50 optimized/baseline"), "{table}");
    assert!(table.contains("| create_node | optimized | outbox |"), "{table}");
    assert!(table.contains("| create_node | optimized-events_background | background |"), "{table}");
    assert!(table.contains("## Cache tiers: 3 instances") && table.contains("| get_node | both_tiers |"), "{table}");
    cache_tiers_were_measured(&report["cache_tiers"]);
    assert!(table.contains("## Realtime: 3 clients"), "{table}");
    realtime_was_measured(&report["realtime"]);
    std::fs::remove_dir_all(&out).unwrap();
}

/// Both variants ran on three `brain2 serve` instances and were measured; with the shared
/// tier, instances answered from it and no read of a note was older than the last write of
/// it (a write through one instance is read at once through the others).
fn cache_tiers_were_measured(tiers: &Value) {
    assert_eq!(tiers["instances"], 3, "{tiers}");
    let variants = tiers["variants"].as_array().expect("the cache-tiers variants");
    let names: Vec<&str> = variants.iter().map(|variant| variant["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["memory", "both_tiers"]);
    for variant in variants {
        assert!(variant["reads"].as_u64().unwrap() > 0, "{variant}");
        assert!(variant["read_units_per_read"].as_f64().is_some(), "{variant}");
        assert!(variant["checked_reads"].as_u64().unwrap() > 0, "{variant}");
        for request in variant["requests"].as_array().unwrap() {
            assert_eq!(request["errors"], 0, "{request}");
        }
        assert!(variant["lookups"]["memory"]["hits"].as_f64().unwrap() > 0.0, "{variant}");
    }
    let (memory, both) = (&variants[0], &variants[1]);
    // The flag decides: with it off, the shared tier is never looked in, though configured.
    assert_eq!(
        memory["lookups"]["shared"]["hits"].as_f64().unwrap() + memory["lookups"]["shared"]["misses"].as_f64().unwrap(),
        0.0
    );
    assert!(both["lookups"]["shared"]["hits"].as_f64().unwrap() > 0.0, "{both}");
    assert_eq!(both["stale_reads"], 0, "{both}");
    assert_eq!(both["cache_health"], "up", "{both}");
    assert!(tiers["read_units_ratio"].as_f64().is_some(), "{tiers}");
}

/// Every note a client wrote came back on its own socket, and only there.
fn realtime_was_measured(realtime: &Value) {
    assert_eq!(realtime["clients"], 3, "{realtime}");
    let count = |field: &str| realtime[field].as_u64().unwrap_or_else(|| panic!("{field}: {realtime}"));
    assert!(count("writes") > 0, "{realtime}");
    assert_eq!(count("failed_writes"), 0, "{realtime}");
    assert_eq!(count("delivered"), count("writes"), "{realtime}");
    assert_eq!(count("lost"), 0, "{realtime}");
    assert_eq!(count("foreign_messages"), 0, "{realtime}");
    assert_eq!(count("dropped_sockets"), 0, "{realtime}");
    assert!(count("received") >= count("writes") && count("frames") > 0, "{realtime}");
    let figure = |field: &str| realtime[field].as_f64().unwrap_or_else(|| panic!("{field}: {realtime}"));
    assert!(figure("write_to_message_p50_ms") <= figure("write_to_message_p99_ms"), "{realtime}");
    assert!(figure("write_to_message_p99_ms") <= figure("write_to_message_max_ms"), "{realtime}");
    assert!(figure("post_p50_ms") <= figure("post_p99_ms"), "{realtime}");
}
