//! The per-environment lock (a Lease), through weaver's library API, against the fake API
//! server or the real cluster of `WEAVER_TEST_KUBECONFIG`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};
use weaver_cluster::{Cluster, HeldLock, LockEvent, LockOptions, LockSubject};
use weaver_project::{FsSource, Project};

fn connect(cluster: &TestCluster) -> Cluster {
    let options = cluster.connect_options(Duration::from_secs(10));
    cluster.block_on(Cluster::connect(&options)).unwrap_or_else(|e| panic!("{e}"))
}

fn options(namespace: &str, holder: &str, wait: Duration) -> LockOptions {
    LockOptions {
        namespace: namespace.to_string(),
        subject: LockSubject::Environment { name: "dev".to_string(), file: "environments/dev.yaml".into() },
        holder: holder.to_string(),
        wait,
        lease_duration: Duration::from_secs(30),
        replica: None,
    }
}

async fn acquire(weaver: &Cluster, options: &LockOptions) -> HeldLock {
    weaver.acquire_lock(options, |_| {}).await.unwrap_or_else(|e| panic!("{} could not lock: {e}", options.holder))
}

/// The lock's Lease as the cluster has it.
fn lease(cluster: &TestCluster, namespace: &str) -> Value {
    let leases = cluster.list("coordination.k8s.io/v1", "Lease", "leases", namespace);
    leases.into_iter().find(|l| l["metadata"]["name"] == "weaver-lock-dev").expect("the Lease weaver-lock-dev")
}

fn holder(lease: &Value) -> Option<&str> {
    lease["spec"]["holderIdentity"].as_str().filter(|h| !h.is_empty())
}

/// A Lease written by hand, as a holder that went away would have left it.
fn abandoned_lease(namespace: &str, holder: &str, renewed: &str, seconds: i64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-dev", "namespace": namespace},
        "spec": {"holderIdentity": holder, "acquireTime": renewed, "renewTime": renewed,
                 "leaseDurationSeconds": seconds, "leaseTransitions": 3},
    })
}

fn micro_time(offset_seconds: i64) -> String {
    let time = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(offset_seconds);
    time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[test]
fn the_first_acquirer_creates_the_lease_where_the_environment_says_and_release_clears_its_holder() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let repo = Repo::empty();
    repo.write("environments/dev.yaml", &format!("cluster:\n  lockNamespace: {namespace}\n"));
    let environment = Project::new(Arc::new(FsSource::new(repo.path()))).environment("dev").unwrap();
    let file = weaver_project::environment::environment_path(&environment.name);
    let options = LockOptions::environment(&environment.name, file, &environment.lock_namespace, Duration::ZERO);
    assert_eq!(options.lease_duration, Duration::from_secs(30));
    let weaver = connect(&cluster);
    let held = cluster.block_on(acquire(&weaver, &options));

    let taken = lease(&cluster, &namespace);
    assert_eq!(holder(&taken), Some(options.holder.as_str()));
    assert!(options.holder.ends_with(&format!(" pid {}", std::process::id())), "{}", options.holder);
    assert_eq!(taken["spec"]["leaseDurationSeconds"], 30);
    assert_eq!(taken["spec"]["leaseTransitions"], 0);
    let acquired = taken["spec"]["acquireTime"].as_str().unwrap();
    assert_eq!(acquired.len(), "2024-01-02T03:04:05.123456Z".len(), "a MicroTime: {acquired}");
    assert_eq!(taken["spec"]["renewTime"], taken["spec"]["acquireTime"]);
    held.check().unwrap();

    cluster.block_on(held.release()).unwrap();
    assert_eq!(holder(&lease(&cluster, &namespace)), None);
}

#[test]
fn a_second_acquirer_waits_then_times_out_naming_the_holder_and_since_when() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let mut events = Vec::new();
    let (first, second) = cluster.block_on(async {
        let first = acquire(&weaver, &options(&namespace, "alice@ci pid 1", Duration::ZERO)).await;
        let bob = options(&namespace, "bob@laptop pid 2", Duration::from_secs(2));
        let second = weaver.acquire_lock(&bob, |event| events.push(event)).await;
        (first, second)
    });
    let Err(err) = second else { panic!("bob got the lock alice holds") };

    let since = lease(&cluster, &namespace)["spec"]["acquireTime"].as_str().unwrap()[..19].to_string() + "Z";
    assert_eq!(events, [LockEvent::Waiting { holder: "alice@ci pid 1".into(), since: since.clone() }]);
    assert_eq!(
        err.to_string(),
        format!(
            "environment `dev` is locked: Lease {namespace}/weaver-lock-dev is held by alice@ci pid 1 since {since} \
             (waited 2s)"
        )
    );
    let help = err.help.unwrap();
    assert!(help.contains("--lock-timeout") && help.contains("30s after its last renewal"), "{help}");
    cluster.block_on(first.release()).unwrap();
}

#[test]
fn release_lets_a_waiter_in() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let mut events = Vec::new();
    let bob = cluster.block_on(async {
        let alice = acquire(&weaver, &options(&namespace, "alice@ci pid 1", Duration::ZERO)).await;
        let bob = options(&namespace, "bob@laptop pid 2", Duration::from_secs(30));
        let waiting = weaver.acquire_lock(&bob, |event| events.push(event));
        let releasing = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            alice.release().await
        };
        let (bob, released) = tokio::join!(waiting, releasing);
        released.unwrap();
        bob.unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(matches!(&events[..], [LockEvent::Waiting { holder, .. }] if holder == "alice@ci pid 1"), "{events:?}");
    let taken = lease(&cluster, &namespace);
    assert_eq!(holder(&taken), Some("bob@laptop pid 2"));
    assert_eq!(taken["spec"]["leaseTransitions"], 1);
    cluster.block_on(bob.release()).unwrap();
}

#[test]
fn a_waiter_that_defers_leaves_a_released_lease_free_until_it_says_take_it() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let alice = cluster.block_on(acquire(&weaver, &options(&namespace, "alice@ci pid 1", Duration::ZERO)));
    // Bob waits on a runtime of his own, leaving a free Lease alone for its first two seconds.
    let connect_options = cluster.connect_options(Duration::from_secs(10));
    let bob = options(&namespace, "bob@laptop pid 2", Duration::from_secs(30));
    let bob = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let weaver = Cluster::connect(&connect_options).await.unwrap_or_else(|e| panic!("{e}"));
            let mut asked = Vec::new();
            let defer = |free_for: Duration| {
                asked.push(free_for);
                std::future::ready(free_for < Duration::from_secs(2))
            };
            let held = weaver.acquire_lock_deferring(&bob, |_| {}, defer).await.unwrap_or_else(|e| panic!("{e}"));
            let taken = std::time::Instant::now();
            held.release().await.unwrap();
            (taken, asked)
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    cluster.block_on(alice.release()).unwrap();
    let released = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(holder(&lease(&cluster, &namespace)), None, "the deferring waiter took the Lease");
    let (taken, asked) = bob.join().unwrap();
    let waited = taken.duration_since(released);
    assert!(waited >= Duration::from_secs(2), "taken {waited:?} after the release");
    // Asked only while the Lease was free: first with zero, then with how long it had been.
    assert_eq!(asked.first(), Some(&Duration::ZERO), "{asked:?}");
    assert!(asked.windows(2).all(|pair| pair[0] < pair[1]), "{asked:?}");
    assert!(asked.last().is_some_and(|last| *last >= Duration::from_secs(2)), "{asked:?}");
    assert_eq!(lease(&cluster, &namespace)["spec"]["leaseTransitions"], 1, "bob took it from alice");
}

#[test]
fn a_lease_its_holder_stopped_renewing_is_taken_over() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let renewed = micro_time(-3600);
    cluster.create(&abandoned_lease(&namespace, "crashed@ci pid 9", &renewed, 30));
    let weaver = connect(&cluster);
    let mut events = Vec::new();
    let held = cluster.block_on(async {
        let alice = options(&namespace, "alice@ci pid 1", Duration::ZERO);
        weaver.acquire_lock(&alice, |event| events.push(event)).await.unwrap_or_else(|e| panic!("{e}"))
    });
    // Its holder's apply did not finish, and the one taking the lock is told so.
    let second = renewed.split('.').next().unwrap().trim_end_matches('Z');
    assert!(
        matches!(&events[..], [LockEvent::TakenOver { holder, renewed }]
            if holder == "crashed@ci pid 9" && renewed.trim_end_matches('Z') == second),
        "{events:?} (renewed {renewed})"
    );
    let taken = lease(&cluster, &namespace);
    assert_eq!(holder(&taken), Some("alice@ci pid 1"));
    assert_eq!(taken["spec"]["leaseTransitions"], 4);
    cluster.block_on(held.release()).unwrap();
}

/// A controller's replica keeps its name when its container restarts in its Pod (killed, out of
/// memory): the lease it left is an earlier run's, taken over as anyone's.
#[test]
fn a_lease_left_by_an_earlier_run_of_the_same_holder_is_taken_over_and_said() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let holder = "EnvironmentSync team/shop on operator-7f9c";
    cluster.create(&abandoned_lease(&namespace, holder, &micro_time(-120), 30));
    let weaver = connect(&cluster);
    let mut events = Vec::new();
    let held = cluster.block_on(async {
        let again = options(&namespace, holder, Duration::ZERO);
        weaver.acquire_lock(&again, |event| events.push(event)).await.unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(matches!(&events[..], [LockEvent::TakenOver { holder: taken, .. }] if taken == holder), "{events:?}");
    cluster.block_on(held.release()).unwrap();
}

#[test]
fn a_lease_that_stops_changing_expires_even_when_its_holders_clock_runs_ahead() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    // Renewed "an hour from now" by its clock, for 2 s: only watching it can tell it is dead.
    cluster.create(&abandoned_lease(&namespace, "ahead@ci pid 9", &micro_time(3600), 2));
    let weaver = connect(&cluster);
    let mut events = Vec::new();
    let held = cluster.block_on(async {
        let alice = options(&namespace, "alice@ci pid 1", Duration::from_secs(20));
        weaver.acquire_lock(&alice, |event| events.push(event)).await.unwrap_or_else(|e| panic!("{e}"))
    });
    assert!(
        matches!(&events[..], [LockEvent::Waiting { holder, .. }, LockEvent::TakenOver { holder: taken, .. }]
            if holder == "ahead@ci pid 9" && taken == "ahead@ci pid 9"),
        "{events:?}"
    );
    assert_eq!(holder(&lease(&cluster, &namespace)), Some("alice@ci pid 1"));
    cluster.block_on(held.release()).unwrap();
}

#[test]
fn a_held_lock_is_renewed() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let short = LockOptions { lease_duration: Duration::from_secs(3), ..options(&namespace, "alice", Duration::ZERO) };
    let held = cluster.block_on(async {
        let held = acquire(&weaver, &short).await;
        // Renewed every second; four seconds outlive the lease unless it was renewed.
        tokio::time::sleep(Duration::from_millis(4000)).await;
        held
    });
    let renewed = lease(&cluster, &namespace);
    let time = |field: &str| renewed["spec"][field].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let lead = time("renewTime").duration_since(time("acquireTime"));
    assert!(lead >= jiff::SignedDuration::from_secs(2), "renewTime is {lead} after acquireTime");
    assert_eq!(holder(&renewed), Some("alice"));
    held.check().unwrap();
    cluster.block_on(held.release()).unwrap();
}

#[test]
fn of_two_concurrent_acquirers_exactly_one_wins() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let race = || {
        cluster.block_on(async {
            let alice = options(&namespace, "alice", Duration::ZERO);
            let bob = options(&namespace, "bob", Duration::ZERO);
            let (alice, bob) = tokio::join!(weaver.acquire_lock(&alice, |_| {}), weaver.acquire_lock(&bob, |_| {}));
            match (alice, bob) {
                (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => {
                    assert!(lost.to_string().contains("is locked"), "{lost}");
                    won
                }
                (Ok(_), Ok(_)) => panic!("both got the lock"),
                (Err(a), Err(b)) => panic!("neither got the lock: {a}; {b}"),
            }
        })
    };
    // Both creating the Lease, then both taking the released Lease over.
    let won = race();
    cluster.block_on(won.release()).unwrap();
    let won = race();
    cluster.block_on(won.release()).unwrap();
}

#[test]
fn a_lock_someone_else_takes_is_reported_lost() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let short = LockOptions { lease_duration: Duration::from_secs(3), ..options(&namespace, "alice", Duration::ZERO) };
    let held = cluster.block_on(acquire(&weaver, &short));
    let taken = abandoned_lease(&namespace, "intruder", &micro_time(0), 30);
    cluster.merge_patch(&taken, &json!({"spec": {"holderIdentity": "intruder"}}), "intruder");

    let lost = cluster.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), held.lost()).await.expect("the loss is noticed within 10 s")
    });
    let message = lost.to_string();
    assert!(message.starts_with(&format!("lost the lock of environment `dev` (Lease {namespace}/weaver-lock-dev)")));
    assert!(message.contains("intruder took it over"), "{message}");
    assert_eq!(held.check().unwrap_err().to_string(), message);

    cluster.block_on(held.release()).unwrap();
    assert_eq!(holder(&lease(&cluster, &namespace)), Some("intruder"), "release leaves another holder's lock alone");
}

#[test]
fn a_lock_namespace_that_does_not_exist_is_named() {
    let cluster = TestCluster::start();
    let weaver = connect(&cluster);
    let missing = format!("{}-absent", cluster.prefix);
    let Err(err) = cluster.block_on(weaver.acquire_lock(&options(&missing, "alice", Duration::ZERO), |_| {})) else {
        panic!("locked in a namespace that does not exist")
    };
    assert!(
        err.to_string().starts_with(&format!("cannot lock environment `dev`: namespace `{missing}` does not exist"))
    );
    assert!(err.help.unwrap().contains("set `cluster.lockNamespace` in environments/dev.yaml"));
}

#[test]
fn a_forbidden_lock_says_which_permissions_on_leases_in_which_namespace() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("RBAC rules") else { return };
    let namespace = cluster.namespace("locks");
    fake.forbid("create", "leases", Some(&namespace));
    let weaver = connect(&cluster);
    let Err(err) = cluster.block_on(weaver.acquire_lock(&options(&namespace, "alice", Duration::ZERO), |_| {})) else {
        panic!("locked without permission")
    };
    let message = err.to_string();
    assert!(message.starts_with(&format!("creating Lease {namespace}/weaver-lock-dev: forbidden")), "{message}");
    assert!(message.contains("cannot create resource \"leases\""), "{message}");
    let help = err.help.unwrap();
    assert!(
        help.contains(&format!("get, create and update on leases (coordination.k8s.io) in namespace `{namespace}`"))
    );
}

#[test]
fn a_renewal_that_cannot_finish_before_the_lease_expires_loses_the_lock() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("delaying the renewal") else { return };
    let namespace = cluster.namespace("locks");
    let weaver = connect(&cluster);
    let short = LockOptions { lease_duration: Duration::from_secs(3), ..options(&namespace, "alice", Duration::ZERO) };
    let held = cluster.block_on(acquire(&weaver, &short));
    // Every renewal hangs for longer than the request timeout (10 s), so retrying alone would
    // take close to a minute while others may take the Lease after 3 s.
    let leases = format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases");
    fake.inject(weaver_test_apiserver::Fault::delay("PUT", &leases, Duration::from_secs(60)).times(10));
    let lost = cluster.block_on(async {
        tokio::time::timeout(Duration::from_secs(6), held.lost())
            .await
            .expect("the loss is noticed once the Lease expires")
    });
    assert!(lost.to_string().contains("could not be renewed within 3s"), "{lost}");
}
