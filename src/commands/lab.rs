//! `cdnwatch lab`: runs the lab standalone and writes a config pointing at it; `cdnwatch lab fault
//! add|list|rm|clear` drives a running lab's fault API.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::lab::fault::{Fault, FaultKind, FaultSpec};
use crate::lab::{Lab, LabOptions};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    pub command: Option<LabCommand>,
    /// Address of the fault API.
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub listen: SocketAddr,
    /// Write a config pointing at the lab to this file (and the lab CA beside it, `lab-ca.pem`).
    #[arg(long)]
    pub write_config: Option<PathBuf>,
    /// Port of every edge and control target (0: the first free one).
    #[arg(long, default_value_t = 0)]
    pub edge_port: u16,
    /// Port of every resolver, UDP and TCP (0: the first free one).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LabCommand {
    /// Injects, lists and removes faults in a running lab.
    #[command(subcommand)]
    Fault(FaultCommand),
}

// Parsed once per command line: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FaultCommand {
    /// Adds a fault; prints its id.
    Add(AddArgs),
    /// Lists the active faults.
    List {
        #[arg(long, default_value = "127.0.0.1:8480")]
        api: SocketAddr,
    },
    /// Removes one fault.
    Rm {
        #[arg(long, default_value = "127.0.0.1:8480")]
        api: SocketAddr,
        id: u64,
    },
    /// Removes every fault.
    Clear {
        #[arg(long, default_value = "127.0.0.1:8480")]
        api: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    #[arg(long, default_value = "127.0.0.1:8480")]
    pub api: SocketAddr,
    /// http_status, delay, slow_body, reset, refuse, blackhole, cert_expired, cert_expiring,
    /// cert_wrong_name, dns_servfail, dns_nxdomain, dns_refused, dns_timeout, dns_delay, stale_dns.
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub vendor: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long)]
    pub resolver: Option<String>,
    #[arg(long)]
    pub edge: Option<IpAddr>,
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// For http_status.
    #[arg(long)]
    pub status: Option<u16>,
    /// For delay and dns_delay.
    #[arg(long)]
    pub ms: Option<u64>,
    /// For cert_expiring.
    #[arg(long)]
    pub days: Option<i64>,
    /// For slow_body.
    #[arg(long)]
    pub bytes_per_sec: Option<u64>,
    /// Share of requests hit, 0..1 (default 1).
    #[arg(long)]
    pub ratio: Option<f64>,
}

impl AddArgs {
    fn spec(self) -> anyhow::Result<FaultSpec> {
        let kind: FaultKind = serde_json::from_value(serde_json::Value::String(self.kind.clone()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "--kind {:?} is not a fault kind (see `cdnwatch lab fault add --help`)",
                    self.kind
                )
            })?;
        Ok(FaultSpec {
            kind,
            vendor: self.vendor,
            host: self.host,
            region: self.region,
            resolver: self.resolver,
            edge: self.edge,
            path_prefix: self.path_prefix,
            status: self.status,
            ms: self.ms,
            days: self.days,
            bytes_per_sec: self.bytes_per_sec,
            ratio: self.ratio,
        })
    }
}

pub(super) async fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(LabCommand::Fault(cmd)) => fault(cmd).await,
        None => standalone(args).await,
    }
}

async fn standalone(args: LabArgs) -> anyhow::Result<ExitCode> {
    // SIGTERM is taken over before anything is printed: whoever reads the banner (a supervisor, a
    // test) may stop the lab at once, and the default action would kill it uncleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let lab = Lab::start(LabOptions {
        api_listen: args.listen,
        edge_port: args.edge_port,
        dns_port: args.dns_port,
        ..LabOptions::default()
    })
    .await
    .context("starting the lab")?;
    let t = lab.topology();
    println!("cdnwatch lab: vendors alpha and beta, 3 regions x 2 resolvers, on loopback");
    println!("  fault API:  http://{}/faults", lab.api_addr());
    println!(
        "  edges:      127.21-22.1-3.1-2 port {} (HTTPS)",
        t.edge_port
    );
    println!(
        "  resolvers:  127.53.1-3.1-2 port {} (UDP and TCP)",
        t.dns_port
    );
    if let Some(path) = &args.write_config {
        lab.write_config(path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  config:     {}", path.display());
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// How long one call to the lab's fault API may take.
const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One call to the lab's fault API at `api`: the status and the body. Spoken with hyper's client
/// connection over one TCP stream rather than reqwest: this command is the binary's only HTTP
/// client of its own, the API is plain HTTP on loopback, and reqwest's dependency tree was a
/// noticeable part of a release build.
async fn call(
    api: SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(hyper::StatusCode, bytes::Bytes)> {
    use http_body_util::{BodyExt as _, Full};
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(api).await?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, api.to_string());
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
        let response = send.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    };
    tokio::time::timeout(API_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {API_TIMEOUT:?}"))?
        .with_context(|| format!("reaching the lab at {api}"))
}

/// The answer's body when the call succeeded, else the API's error sentence (or the status).
async fn checked(
    api: SocketAddr,
    method: hyper::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<bytes::Bytes> {
    let (status, bytes) = call(api, method, path, body).await?;
    if status.is_success() {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let why = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(text);
    bail!("the lab refused: {why} ({status})")
}

async fn fault(cmd: FaultCommand) -> anyhow::Result<ExitCode> {
    use hyper::Method;
    match cmd {
        FaultCommand::Add(args) => {
            let api = args.api;
            let body = serde_json::to_vec(&args.spec()?)?;
            let answer = checked(api, Method::POST, "/faults", Some(body)).await?;
            let fault: Fault =
                serde_json::from_slice(&answer).context("reading the lab's answer")?;
            println!("{}", fault.id);
        }
        FaultCommand::List { api } => {
            let answer = checked(api, Method::GET, "/faults", None).await?;
            let faults: Vec<Fault> =
                serde_json::from_slice(&answer).context("reading the lab's answer")?;
            print_faults(faults)?;
        }
        FaultCommand::Rm { api, id } => {
            checked(api, Method::DELETE, &format!("/faults/{id}"), None).await?;
        }
        FaultCommand::Clear { api } => {
            checked(api, Method::DELETE, "/faults", None).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per fault: its id, kind and the rest of its spec.
fn print_faults(faults: Vec<Fault>) -> anyhow::Result<()> {
    if faults.is_empty() {
        println!("no faults");
    }
    for f in faults {
        let mut spec = serde_json::to_value(&f.spec)?;
        let kind = spec
            .as_object_mut()
            .and_then(|o| o.remove("kind"))
            .unwrap_or_default();
        println!("{:>4}  {:<16} {}", f.id, kind.as_str().unwrap_or("?"), spec);
    }
    Ok(())
}
