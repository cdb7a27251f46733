//! What weaver knows of a release it deployed, kept in the cluster and compared with it: its
//! records (`record`), what changed out of band since (`drift`), how its objects are doing
//! (`status`), taking one over from Helm (`adopt`), and judgments of them kept while nothing they
//! read changed (`kept`). Pure: the cluster is read by
//! `crate::cluster`, and the actions put the pieces together.

pub mod adopt;
pub mod drift;
pub mod kept;
pub mod record;
pub mod status;
