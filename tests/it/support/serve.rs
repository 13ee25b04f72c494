//! Serve an axum app on a loopback port from its own thread and runtime,
//! so sync tests can use it too. The fakes of vendor APIs and the webhook
//! receiver all start this way.

/// Stops the server when dropped.
pub struct Running {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A listener on 127.0.0.1 on a free port, ready for [`serve`]; its
/// address is known before the app is built.
pub fn bind() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    listener
}

pub fn serve(listener: std::net::TcpListener, app: axum::Router) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // Sent or dropped: either way, stop.
                    let _ = stopped.await;
                })
                .await;
        });
    });
    Running { _stop: stop }
}
