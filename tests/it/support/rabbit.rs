//! The machine's RabbitMQ for tests: a unique name prefix per test, and
//! everything under it deleted when the test ends.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::{BasicProperties, Connection, ConnectionProperties};

pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Deletes the prefix's exchange and queues when dropped.
pub struct Declared {
    pub prefix: String,
}

impl Declared {
    pub fn new() -> Self {
        if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
            panic!("RabbitMQ is not running on 127.0.0.1:5672: start it with `rabbitmq-server -detached` (.ci/run does)");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self {
            prefix: format!("test-{}-{nanos}.", std::process::id()),
        }
    }

    pub fn run<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
        // A runtime of its own, on its own thread: usable from Drop too.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .expect("broker helper thread")
    }

    /// Take one message from the prefix's dead-letter queue (acked), if any.
    pub fn get_dead(&self) -> Option<(Vec<u8>, BasicProperties)> {
        self.get(format!("{}fanout.dead", self.prefix))
    }

    /// Publish many JSON jobs on one connection, each confirmed.
    pub fn publish_jobs(&self, bodies: Vec<Vec<u8>>) {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        self.publish_many(bodies.into_iter().map(|b| (b, props.clone())).collect());
    }

    /// Publish raw bytes to the prefix's exchange with routing key `job`.
    pub fn publish_raw(&self, body: Vec<u8>, properties: BasicProperties) {
        let exchange = format!("{}fanout", self.prefix);
        Self::run(async move {
            let conn = Connection::connect(URL, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            ch.basic_publish(
                exchange.as_str().into(),
                "job".into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        })
    }

    /// Publish many raw messages to the exchange (key `job`), confirmed.
    pub fn publish_many(&self, messages: Vec<(Vec<u8>, BasicProperties)>) {
        let exchange = format!("{}fanout", self.prefix);
        Self::run(async move {
            let conn = Connection::connect(URL, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            ch.confirm_select(Default::default()).await.unwrap();
            for (body, props) in messages {
                ch.basic_publish(
                    exchange.as_str().into(),
                    "job".into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
                .unwrap();
            }
            ch.wait_for_confirms().await.unwrap();
        })
    }

    /// How many messages wait in the prefix's queue `name` (e.g. `fanout.dead`).
    pub fn count(&self, name: &str) -> u32 {
        let queue = format!("{}{name}", self.prefix);
        Self::run(async move {
            let conn = Connection::connect(URL, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let q = ch
                .queue_declare(
                    queue.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
                .unwrap();
            q.message_count()
        })
    }

    fn get(&self, queue: String) -> Option<(Vec<u8>, BasicProperties)> {
        Self::run(async move {
            let conn = Connection::connect(URL, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let got = ch
                .basic_get(queue.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap()?;
            got.delivery.ack(BasicAckOptions::default()).await.unwrap();
            Some((got.delivery.data.clone(), got.delivery.properties.clone()))
        })
    }

    /// Take one message from the prefix's jobs queue (acked), if any.
    pub fn get_job(&self) -> Option<(Vec<u8>, BasicProperties)> {
        self.get(format!("{}fanout.jobs", self.prefix))
    }
}

impl Drop for Declared {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        Self::run(async move {
            let Ok(conn) = Connection::connect(URL, ConnectionProperties::default()).await else {
                return;
            };
            let Ok(ch) = conn.create_channel().await else {
                return;
            };
            for q in fanout::broker::Topology::new(&prefix).queues() {
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for x in fanout::broker::Topology::new(&prefix).exchanges() {
                let _ = ch
                    .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
        });
    }
}
