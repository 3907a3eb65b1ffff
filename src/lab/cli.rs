#[derive(Debug, clap::Args)]
pub struct LabArgs {}
pub async fn run(_a: LabArgs) -> anyhow::Result<std::process::ExitCode> {
    todo!()
}
