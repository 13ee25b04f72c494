//! A TCP forwarder on a loopback port, started when a test wants a
//! service to "come up" there: the worker is pointed at the port first,
//! finds nothing, and later finds the real RabbitMQ or Redis behind it.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stops accepting when dropped (connections already made run on).
pub struct Forwarder {
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    /// Listen on 127.0.0.1:`port` and pass every connection to `to`.
    pub fn start(port: u16, to: &'static str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the forwarder's port");
        listener.set_nonblocking(true).expect("non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(to) {
                            pipe(client, server);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { stop }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copy both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    };
    copy(a, b2);
    copy(b, a2);
}
