//! The accept loop: what `axum::serve` does, plus what it leaves out for
//! hostile clients: a cap on open connections (past it, new ones wait in the
//! kernel's backlog instead of costing memory here), and a deadline for a
//! request's headers, so a client that trickles a request (slowloris) or opens
//! a connection and says nothing is dropped. (hyper times headers only from a
//! request's first byte; [`FirstByteDeadline`] covers the silence before it.)

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt;

/// What one server accepts at most.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at once.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, once it starts one or
    /// after it connects (also how long an idle kept-alive connection stays).
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets every open
/// connection finish its request (hyper's graceful shutdown) and returns.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropping `signal_rx` tells every connection to shut down gracefully;
    // `close_tx.closed()` resolves when the last connection task has ended.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        // Room first: a full server stops accepting rather than holding more sockets.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let (io, addr) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let service = router.clone().map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            req.map(axum::body::Body::new)
        });
        let service = TowerToHyperService::new(service);
        let (signal_tx, close_rx) = (signal_tx.clone(), close_rx.clone());
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // HTTP/1.1 only, as TLS offers (ALPN): sniffing for HTTP/2 would wait for a
            // silent client's first bytes with no deadline at all.
            let mut builder = Builder::new(TokioExecutor::new()).http1_only();
            builder.http1().timer(TokioTimer::new()).header_read_timeout(timeout);
            let io = FirstByteDeadline::new(io, timeout);
            let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
            let mut stopping = pin!(signal_tx.closed());
            let mut stopped = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !stopped => {
                        stopped = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
            drop(close_rx);
        });
    }
    drop(listener);
    drop(signal_rx);
    drop(close_rx);
    close_tx.closed().await;
    Ok(())
}

/// A connection that must send its first byte within a deadline (after that,
/// hyper's header deadline takes over); a silent one reads as timed out.
pub struct FirstByteDeadline<I> {
    io: I,
    deadline: Option<std::pin::Pin<Box<Sleep>>>,
}

impl<I> FirstByteDeadline<I> {
    /// Wraps a new connection: it has `limit` to start talking.
    pub fn new(io: I, limit: Duration) -> Self {
        Self { io, deadline: Some(Box::pin(tokio::time::sleep(limit))) }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no request within the header deadline")))
                }
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<I> {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, data)
    }
    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
