use discogs_testkit::{require, Scope, Service};
use tokio_postgres::NoTls;

use crate::{within, TestResult};

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection ended: {e}");
        }
    });
    Ok(client)
}

#[tokio::test]
async fn postgres_row_roundtrip_in_own_schema() -> TestResult {
    let Some(pg) = require(Service::Postgres) else {
        return Ok(());
    };
    let scope = Scope::new("pg_roundtrip");
    let schema = scope.schema();
    within("postgres", async {
        let client = connect(pg.url()).await?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.artists (id BIGINT PRIMARY KEY, name TEXT NOT NULL, data JSONB);"
            ))
            .await?;
        let inserted = client
            .execute(
                &format!("INSERT INTO {schema}.artists (id, name) VALUES ($1, $2), ($3, $4)"),
                &[&1_i64, &"The Persuader", &2_i64, &"Mr. James Barth & A.D."],
            )
            .await?;
        assert_eq!(inserted, 2);
        let row = client
            .query_one(
                &format!("SELECT name, count(*) OVER () AS n FROM {schema}.artists WHERE id = $1"),
                &[&2_i64],
            )
            .await?;
        assert_eq!(row.get::<_, &str>("name"), "Mr. James Barth & A.D.");
        assert_eq!(row.get::<_, i64>("n"), 1);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
                &[&schema],
            )
            .await?
            .get(0);
        assert_eq!(left, 0, "schema {schema} was not dropped");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn postgres_user_may_create_a_database() -> TestResult {
    let Some(pg) = require(Service::Postgres) else {
        return Ok(());
    };
    let db = Scope::new("pg_createdb").database();
    within("postgres", async {
        let client = connect(pg.url()).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await?;
        let exists: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&db],
            )
            .await?
            .get(0);
        client.batch_execute(&format!("DROP DATABASE {db}")).await?;
        assert_eq!(exists, 1);
        Ok(())
    })
    .await
}
