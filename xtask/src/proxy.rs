//! `cargo xtask delay-proxy`: a slow link for the benchmark, used as ssh's `ProxyCommand`.
//!
//! It connects to HOST:PORT and relays stdin -> socket and socket -> stdout. Every chunk read in
//! either direction is held back by a fixed one-way delay (half the round-trip time) before it is
//! written on; with a rate, chunks also queue behind each other as on a link of that bandwidth.
//! Buffers are unbounded: the link never pushes back, like a long fat pipe.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Flags of `cargo xtask delay-proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Round-trip time to add, in milliseconds (each direction gets half).
    #[arg(long, default_value_t = 0)]
    pub rtt_ms: u64,
    /// Bandwidth of the link in each direction, in megabits per second (unlimited if absent).
    #[arg(long)]
    pub mbit: Option<f64>,
    /// The host to connect to (ssh's %h).
    pub host: String,
    /// The port to connect to (ssh's %p).
    pub port: u16,
}

/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;

/// Relays until both directions have ended.
pub fn run(args: &ProxyArgs) -> Result<(), String> {
    let socket = TcpStream::connect((args.host.as_str(), args.port)).map_err(|e| {
        format!(
            "delay-proxy: cannot connect to {}:{}: {e}",
            args.host, args.port
        )
    })?;
    socket
        .set_nodelay(true)
        .map_err(|e| format!("delay-proxy: {e}"))?;
    let link = Link {
        delay: Duration::from_micros(args.rtt_ms * 500),
        bytes_per_sec: args.mbit.map(|m| m * 1e6 / 8.0),
    };
    let to_socket = socket
        .try_clone()
        .map_err(|e| format!("delay-proxy: {e}"))?;
    let from_socket = socket;
    let up = thread::spawn(move || {
        link.relay(std::io::stdin(), &to_socket);
        let _ = to_socket.shutdown(Shutdown::Write);
    });
    link.relay(&from_socket, std::io::stdout());
    let _ = up.join();
    Ok(())
}

/// One direction's delay and bandwidth.
#[derive(Clone, Copy)]
struct Link {
    delay: Duration,
    bytes_per_sec: Option<f64>,
}

impl Link {
    /// Copies `from` to `to` through the link model until `from` ends or `to` fails.
    fn relay(self, mut from: impl Read + Send, mut to: impl Write + Send) {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        thread::scope(|scope| {
            scope.spawn(move || {
                // When the previous chunk finished going onto the wire.
                let mut wire_free = Instant::now();
                let mut buf = vec![0; CHUNK];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let now = Instant::now();
                    let sent = match self.bytes_per_sec {
                        None => now,
                        Some(rate) => {
                            let start = wire_free.max(now);
                            wire_free = start + Duration::from_secs_f64(n as f64 / rate);
                            wire_free
                        }
                    };
                    if tx.send((sent + self.delay, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
            for (due, chunk) in rx {
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    thread::sleep(wait);
                }
                if to.write_all(&chunk).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
        });
    }
}
