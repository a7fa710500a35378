//! `serve`: the HTTP feature server.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::Cli;
use super::store_commands::open;
use crate::server::{self, ServerOptions};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (Feast's default is 6566; 0 picks a free one).
    #[arg(short, long, default_value_t = 6566)]
    pub port: u16,
    /// Concurrent connections; one more gets a 503.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Larger request bodies get a 413.
    #[arg(long, default_value_t = 2 << 20)]
    pub body_limit_bytes: usize,
    /// A request still running after this gets a 503.
    #[arg(long, default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// A connection must send its request head within this.
    #[arg(long, default_value_t = 5_000)]
    pub header_read_timeout_ms: u64,
}

pub(super) fn serve(cli: &Cli, out: &mut impl Write, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = Arc::new(open(cli)?);
    let opts = ServerOptions {
        max_connections: args.max_connections.max(1),
        body_limit_bytes: args.body_limit_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        // The address, for scripts that start the server on port 0.
        writeln!(out, "serving on http://{local}")?;
        out.flush()?;
        server::serve(listener, store, opts, stopped()).await?;
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("stopping: no new connections; finishing the open ones");
}
