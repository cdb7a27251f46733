//! What several crates' tests share (tests only): saying that a test is skipped (`skip`), the
//! case tables of Go template functions checked against their output and a real `helm template`
//! (`cases`), trees of files (`files`), a loopback HTTP server answering with a handler
//! (`http_server`), a forge's pull requests and commit statuses API on it (`forge`), Debian's docker-registry (`registry`), and git: history
//! made with git2 (`git`) and served over smart HTTP (`git_http`), and commits signed by git with ssh-keygen's
//! or GnuPG's keys (`signing`); helm with homes of its own (`helm`) and kubectl
//! (`kubectl`), both without Go's garbage collector.

pub mod cases;
pub mod cosign;
pub mod files;
pub mod flux;
pub mod forge;
pub mod git;
pub mod git_http;
pub mod helm;
pub mod http_server;
pub mod kubectl;
pub mod registry;
pub mod signing;
pub mod skip;
pub mod tls;
