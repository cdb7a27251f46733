//! Runs the fake API server until killed, for trying a client (kubectl, helm) against it by
//! hand: prints its kubeconfig's path, then every request it answers (method, path, query,
//! status) to stderr.
//!
//! ```sh
//! cargo run -p weaver-test-apiserver --example serve
//! ```

fn main() {
    let server = weaver_test_apiserver::TestApiServer::start();
    println!("{}", server.kubeconfig_path().display());
    let mut seen = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let requests = server.requests();
        for r in &requests[seen..] {
            eprintln!("{} {} {} {:?} -> {}", r.method, r.path, r.query, r.content_type, r.status);
        }
        seen = requests.len();
    }
}
