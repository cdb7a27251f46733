//! What weaver knows of a release it deployed, kept in the cluster and compared with it: its
//! records (`record`), what changed out of band since (`drift`), how its objects are doing
//! (`status`), taking one over from Helm (`adopt`), and what a judgment of them read
//! (`fingerprint`: a reader keeps one while nothing it read changed). Pure: the cluster is read by
//! `weaver_cluster`, and the actions put the pieces together.

pub mod adopt;
pub mod drift;
pub mod fingerprint;
pub mod record;
pub mod status;
