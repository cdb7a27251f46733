//! What `weaver check` asks the API server beyond objects: its clock, and what the caller may
//! do (a SelfSubjectAccessReview, as `kubectl auth can-i`).

use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::api::{Api, PostParams};

use crate::{Cluster, Question};
use weaver_core::error::Result;

impl Cluster {
    /// How far the API server's clock is ahead of this machine's (negative: behind), from the
    /// `Date` of its answer to `GET /version`, to the second that header holds; None when it
    /// sent no readable `Date`.
    pub async fn clock_offset(&self) -> Result<Option<jiff::SignedDuration>> {
        let request = http::Request::get("/version")
            .body(Vec::new())
            .map_err(|err| weaver_core::Error::new(format!("asking the server's time: {err}")))?;
        let asked = jiff::Timestamp::now();
        let answer = self.client.send(request.map(kube::client::Body::from)).await.map_err(|err| {
            weaver_core::Error::new(format!("asking the server's time: {}", crate::api_message(&err)))
        })?;
        let answered = jiff::Timestamp::now();
        let date = answer.headers().get(http::header::DATE).and_then(|date| date.to_str().ok());
        let Some(server) = date.and_then(|date| jiff::fmt::rfc2822::parse(date).ok()) else { return Ok(None) };
        // The server wrote it between the request and its answer, in whole seconds.
        let midway = asked + asked.duration_until(answered) / 2;
        Ok(Some(midway.duration_until(server.timestamp())))
    }

    /// Whether this client's identity may do what `question` asks.
    pub async fn may_i(&self, question: &Question) -> Result<bool> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(question.attributes()),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let doing = format!("asking whether you may {} {}", question.verb, question.resource);
        let answer = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|err| weaver_core::Error::new(format!("{doing}: {}", crate::api_message(&err))))?;
        Ok(answer.status.is_some_and(|status| status.allowed))
    }
}
