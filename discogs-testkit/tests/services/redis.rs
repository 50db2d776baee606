use discogs_testkit::{require, Scope, Service};

use crate::{within, TestResult};

#[tokio::test]
async fn redis_set_get_unique_key() -> TestResult {
    let Some(cfg) = require(Service::Redis) else {
        return Ok(());
    };
    let key = Scope::new("redis_smoke").key("greeting");
    within("redis", async {
        let client = redis::Client::open(cfg.url())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg(&key)
            .arg("hello from discogsography")
            .arg("EX")
            .arg(60)
            .query_async::<()>(&mut con)
            .await?;
        let value: String = redis::cmd("GET").arg(&key).query_async(&mut con).await?;
        assert_eq!(value, "hello from discogsography");
        let deleted: i64 = redis::cmd("DEL").arg(&key).query_async(&mut con).await?;
        assert_eq!(deleted, 1);
        Ok(())
    })
    .await
}
