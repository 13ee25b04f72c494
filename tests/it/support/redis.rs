//! The machine's Redis (127.0.0.1:6379) for tests: each test's keys live
//! under its queue prefix and are deleted when it ends.

/// Deletes a test's Redis keys (everything under its prefix) when dropped.
pub struct RedisKeys(String);

impl RedisKeys {
    /// Fails the test, saying how to get Redis, when none answers.
    pub fn new(prefix: &str) -> Self {
        if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
            panic!("Redis is not running on 127.0.0.1:6379: install and start it (apt-get install redis-server; redis-server --daemonize yes)");
        }
        Self(prefix.to_string())
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open("redis://127.0.0.1:6379/") else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
