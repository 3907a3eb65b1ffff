//! TEMPORARY STUB (replaced by the probe branch).
use crate::config::{Config, Host, ProbePath, Region, ResolverConfig};
use crate::model::{DnsAnswer, EdgeResult, Failure};
pub struct Prober;
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("x")]
    X,
}
pub struct ProbeReport {
    pub dns: DnsOutcome,
    pub results: Vec<EdgeResult>,
}
pub struct DnsOutcome {
    pub answer: Option<DnsAnswer>,
    pub dns_ms: f64,
    pub failure: Option<Failure>,
}
impl Prober {
    pub fn new(_c: &Config) -> Result<Prober, ProbeSetupError> {
        todo!()
    }
    pub async fn probe(
        &self,
        _h: &Host,
        _p: &ProbePath,
        _r: &Region,
        _s: &ResolverConfig,
    ) -> ProbeReport {
        todo!()
    }
}
