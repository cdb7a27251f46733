//! What redaction costs on the output of a large environment whose secrets are decrypted (diff
//! and apply decrypt them all): 3,000 rendered objects (ConfigMaps with URLs, ports, names,
//! checksums and a base64 blob; Deployments with images and env) against 200 registered values
//! of a whole-file SOPS document (passwords and tokens, ports, `default`-like words). It times
//! apply's check of which objects hold a decrypted value (`finds_in`), render's redaction of the
//! objects (`redact_value`) and the redaction of their text (`redact`, as a diff's text goes),
//! each the median of 15 runs. Target: each under 10 µs an object, so that 3,000 objects take
//! less than 30 ms, a tenth of their render. `WEAVER_BENCH_OBJECTS` scales it. Run with
//! `cargo bench --bench redact`.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use weaver_secrets::Redactor;

fn main() {
    let count: usize = std::env::var("WEAVER_BENCH_OBJECTS").ok().and_then(|n| n.parse().ok()).unwrap_or(3_000);
    let redactor = Redactor::new();
    for i in 0..200 {
        redactor.register(&match i % 4 {
            0 => format!("pA55-w0rd.{i:04}-Zq8xLm"),
            1 => format!("tok_{i:03}a9F3kQ2mZx7Lp"),
            2 => format!("{}", 8000 + i),
            _ => ["default", "values", "enabled", "primary", "replica"][i % 5].to_string(),
        });
    }
    let objects: Vec<Value> = (0..count).map(object).collect();
    let text: Vec<String> = objects.iter().map(|o| serde_json::to_string_pretty(o).unwrap()).collect();

    let median = |run: &mut dyn FnMut()| -> Duration {
        let mut times: Vec<Duration> = (0..15)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let mut found = 0;
    let finds = median(&mut || found = objects.iter().filter(|o| redactor.finds_in(o)).count());
    let mut replaced = 0;
    let values = median(&mut || {
        replaced = objects.iter().map(|o| redactor.redact_value(&mut o.clone())).sum();
    });
    let mut changed = 0;
    let texts = median(&mut || {
        changed = text.iter().filter(|t| matches!(redactor.redact(t), std::borrow::Cow::Owned(_))).count();
    });
    let per = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    for (what, took, outcome) in [
        ("finds_in (apply's check)", finds, format!("{found} objects hold a value")),
        ("redact_value (render)", values, format!("{replaced} leaves replaced, copies included")),
        ("redact (text)", texts, format!("{changed} texts changed")),
    ] {
        println!(
            "{what}: {count} objects in {:.1} ms, {:.2} µs an object (target < 10); {outcome}",
            took.as_secs_f64() * 1e3,
            per(took)
        );
    }
}

/// A rendered object of the kinds a large environment holds; every 50th quotes a secret.
fn object(i: usize) -> Value {
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("certificate-{i}-").repeat(40));
    let leaked = if i.is_multiple_of(50) { format!("pA55-w0rd.{:04}-Zq8xLm", i % 200 / 4 * 4) } else { String::new() };
    match i % 2 {
        0 => json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("app-{i}-config"), "namespace": "shop-prod",
                "labels": {"app.kubernetes.io/name": format!("app-{i}"), "app.kubernetes.io/managed-by": "weaver"},
                "annotations": {"checksum/config": format!("{:064x}", i * 7919)}},
            "data": {"url": format!("http://svc-{i}.shop-prod.svc.cluster.local:8080/api/v1"),
                "log-level": "info", "namespace": "default-x", "password-hint": leaked, "ca.crt": blob}
        }),
        _ => json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{i}"), "namespace": "shop-prod"},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{
                "name": "app", "image": format!("registry.example.com/shop/app-{i}:1.{i}.0"),
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": [{"name": "MODE", "value": "primary"}, {"name": "ENDPOINT", "value": format!("https://api-{i}.example.com:8443")}],
                "args": ["--config=/etc/app/config.yaml", "--verbose"]
            }]}}}
        }),
    }
}
