//! TEMPORARY STUB (replaced by the lab branch).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
pub mod cli;
pub struct LabOptions {
    pub api_listen: SocketAddr,
    pub edge_port: u16,
    pub dns_port: u16,
}
impl Default for LabOptions {
    fn default() -> Self {
        todo!()
    }
}
pub struct Lab;
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("x")]
    X,
}
impl Lab {
    pub async fn start(_o: LabOptions) -> Result<Lab, LabError> {
        todo!()
    }
    pub fn write_config(&self, _d: &Path) -> std::io::Result<PathBuf> {
        todo!()
    }
    pub fn api_addr(&self) -> SocketAddr {
        todo!()
    }
    pub async fn shutdown(self) {}
}
