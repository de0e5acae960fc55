//! Lingering close: a connection the server ends while its client is still sending is read
//! out for a moment before the socket closes.
//!
//! When a socket is closed with bytes still unread in its receive buffer, the kernel answers
//! with a reset, and a reset reaching the client before it read our last answer destroys that
//! answer (a client streaming an oversized upload then sees "connection reset" instead of the
//! 413). So every accepted connection is a [`LingeringStream`]: when the HTTP server drops one
//! that its peer had not closed, the stream is shut down for writing (the peer sees the end of
//! our answers) and what the peer still sends is read and thrown away, for at most
//! [`LINGER_TIME`] and [`LINGER_BYTES`], before the socket closes. This is what Apache and
//! nginx call lingering close.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use poem::{
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};

/// How long a closing connection is read out at most.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much of it at most.
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Accepts TCP connections as [`LingeringStream`]s.
pub struct LingeringAcceptor(pub TcpAcceptor);

impl Acceptor for LingeringAcceptor {
    type Io = LingeringStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(LingeringStream, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        Ok((
            LingeringStream {
                stream: Some(stream),
                peer_closed: false,
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A TCP stream that lingers when dropped before its peer closed it.
pub struct LingeringStream {
    /// Always `Some` until dropped.
    stream: Option<TcpStream>,
    /// A read returned end of stream: nothing more can arrive, nothing to linger for.
    peer_closed: bool,
}

impl LingeringStream {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("present until dropped"))
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream().poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.peer_closed = true;
        }
        polled
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(AsyncWrite::is_write_vectored)
    }
}

impl Drop for LingeringStream {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.peer_closed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// Ends our side, then reads what the peer still sends until it closes, or the time or
/// byte budget runs out.
async fn linger(mut stream: TcpStream) {
    // Already shut down when the server ended the connection cleanly; harmless again.
    let _ = stream.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer still sending when the server drops its connection reads the server's last
    /// bytes, then an orderly end, not a reset.
    #[tokio::test]
    async fn a_dropped_connection_still_receiving_ends_without_a_reset() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = LingeringAcceptor(TcpAcceptor::from_tokio(listener).unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, ..) = acceptor.accept().await.unwrap();
            let mut first = [0u8; 1024];
            let _ = conn.read(&mut first).await.unwrap();
            conn.write_all(b"refused").await.unwrap();
            conn.shutdown().await.unwrap();
            drop(conn);
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = client.into_split();
        let sender = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..256 {
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            writer
        });
        server.await.unwrap();
        let mut answer = Vec::new();
        reader
            .read_to_end(&mut answer)
            .await
            .expect("an orderly end, not a reset");
        assert_eq!(answer, b"refused");
        drop(sender.await.unwrap());
    }
}
